// Shared by the unit tests: the HttpError a call is refused with (failing if it is not refused).

import assert from "node:assert/strict";
import { HttpError } from "../src/lib/errors";

export async function refusal(run: Promise<unknown>): Promise<HttpError> {
  try {
    await run;
  } catch (err) {
    assert.ok(err instanceof HttpError);
    return err;
  }
  assert.fail("expected a refusal");
}
