"""`make bench`: what the Worker adds over calling the AI Gateway (emulator) directly.

Both paths run in the same session on the same machine, with the same request bodies and
the same load generator, so the printed figures are ratios against a baseline measured
in the same run, not absolute claims.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from provision.config import stack_file
from provision.local import LocalGateway

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.mjs"
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))
CONCURRENCY = (1, 32)


def load(url: str, headers: dict[str, str], body: dict, concurrency: int) -> dict:
    requests = REQUESTS if concurrency > 1 else max(200, REQUESTS // 5)
    spec = {
        "url": url,
        "headers": headers,
        "body": body,
        "requests": requests,
        "concurrency": concurrency,
        "warmup": min(200, requests // 5),
    }
    out = subprocess.run(["node", str(LOADGEN), json.dumps(spec)], capture_output=True, text=True,
                         check=True, timeout=600)
    return json.loads(out.stdout)


def main() -> int:
    with LocalGateway(stack_file("dev")) as gateway:
        assert gateway.config is not None and gateway.emulator_url
        config = gateway.config
        user_key = gateway.demo_keys()["alice"]
        direct_url = f"{gateway.emulator_url}/v1/{config.accountId}/{config.gatewayId}/compat/chat/completions"
        direct_headers = {
            "content-type": "application/json",
            "authorization": f"Bearer {gateway.secrets.provider_api_keys['openai']}",
            "cf-aig-authorization": f"Bearer {gateway.secrets.ai_gateway_token}",
        }
        worker_url = f"{gateway.openai_base_url}/chat/completions"
        worker_headers = {"content-type": "application/json", "authorization": f"Bearer {user_key}"}

        print(f"make bench — {REQUESTS} requests per run at c=32 (fewer at c=1), dev stack, "
              f"{os.cpu_count()} cores\n")
        header = (f"{'mode':<11}{'conc':>5}  {'direct p50/p99 ms':>18}  {'worker p50/p99 ms':>18}  "
                  f"{'added p50/p99 ms':>17}  {'direct rps':>10}  {'worker rps':>10}  {'ratio':>6}")
        print(header)
        print("-" * len(header))
        for stream in (False, True):
            body = {"model": "openai/gpt-4o-mini", "stream": stream,
                    "messages": [{"role": "user", "content": "benchmark emulate:tokens=16"}]}
            worker_body = {**body, "model": "gpt-4o-mini"}
            for concurrency in CONCURRENCY:
                direct = load(direct_url, direct_headers, body, concurrency)
                via = load(worker_url, worker_headers, worker_body, concurrency)
                if direct["errors"] or via["errors"]:
                    print(f"errors: direct {direct['errors']}, worker {via['errors']}", file=sys.stderr)
                    return 1
                mode = "streaming" if stream else "non-stream"
                print(f"{mode:<11}{concurrency:>5}  {direct['p50']:>8.2f} /{direct['p99']:>7.2f}  "
                      f"{via['p50']:>8.2f} /{via['p99']:>7.2f}  "
                      f"{via['p50'] - direct['p50']:>7.2f} /{via['p99'] - direct['p99']:>7.2f}  "
                      f"{direct['rps']:>10.0f}  {via['rps']:>10.0f}  {via['rps'] / direct['rps']:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
