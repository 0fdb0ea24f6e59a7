"""``python -m benchmarks.imports``: a 100,000-row members CSV imported through the real Celery
worker on PostgreSQL and Redis (the benchmark's own database), timed end to end."""

from __future__ import annotations

FIRST = ["Aisha", "Ravi", "Mei", "Daniel", "Siti", "Arjun", "Li Na", "Omar", "Priya", "Wei"]
LAST = ["Tan", "Kumar", "Lim", "Wong", "Abdullah", "Nair", "Chen", "Ismail", "Raj", "Ong"]
HEADER = "card_code,first_name,last_name,phone,email,birthday,joined_on,consent_sms,consent_email,stamps,points\n"


def members_csv_make(rows: int, *, bad: dict[int, str] | None = None) -> str:
    """A members file of ``rows`` valid rows (Malaysian mobiles, half with an email); ``bad`` maps
    a 1-based row number to a line that replaces it."""
    bad = bad or {}
    lines = [HEADER]
    for i in range(1, rows + 1):
        if i in bad:
            lines.append(bad[i] + "\n")
            continue
        email = f"m{i}@example.com" if i % 2 else ""
        lines.append(
            f"C{i:07d},{FIRST[i % 10]},{LAST[i // 10 % 10]},+6012{i:07d},{email},"
            f"19{60 + i % 40}-0{1 + i % 9}-1{i % 10},2024-0{1 + i % 9}-2{i % 8},{'yes' if i % 3 else 'no'},"
            f"{'yes' if i % 2 else 'no'},{i % 10},{i % 100}\n"
        )
    return "".join(lines)
