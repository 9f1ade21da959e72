"""Money is integer micro-dollars (µUSD) inside; decimals only at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000


def usd_to_micros(value: Decimal | int | float | str) -> int:
    """Exact conversion of a USD amount with at most 6 decimals to µUSD."""
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"{value} has more than 6 decimal places (the unit is one micro-dollar)")
    return int(micros)


def format_usd(micros: int, *, symbol: bool = True) -> str:
    """`1234500000` → `$1,234.50` (cents shown, more digits only when they matter)."""
    amount = Decimal(micros) / MICROS_PER_USD
    text = f"{amount:,.2f}" if amount == amount.quantize(Decimal("0.01")) else f"{amount:,.6f}"
    return f"${text}" if symbol else text
