"""Runs rules against a server and reports pass / fail / n/a per rule and transport."""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from dataclasses import asdict, dataclass

from .client import SpecFailure
from .rules import MAX_WAIT, PROFILES, SPEC, CannotCheck, Context, NotApplicable, Rule, all_rules
from .wire import TRANSPORTS, SchemaViolation, UrlTooLong, WireError

PASS, FAIL, NOT_APPLICABLE, UNSUPPORTED = "pass", "fail", "n/a", "unsupported"
# The rule could not be checked within the suite's bounds (the server's settings): the run is
# incomplete, which its exit status says.
INCOMPLETE = "incomplete"


@dataclass
class Result:
    rule: str
    transport: str
    profile: str
    section: str
    outcome: str
    detail: str = ""
    seconds: float = 0.0


async def run_rule(rule: Rule, url: str, transport: str, timeout: float = MAX_WAIT + 10) -> Result:
    started = time.monotonic()
    ctx = Context(url, transport, timeout=timeout)

    def result(outcome: str, detail: str = "") -> Result:
        return Result(
            rule.id,
            transport,
            rule.profile,
            rule.section,
            outcome,
            detail[:2000],
            round(time.monotonic() - started, 3),
        )

    if transport not in rule.transports:
        return result(NOT_APPLICABLE, f"rule applies to {', '.join(rule.transports)}")
    try:
        await asyncio.wait_for(rule.run(ctx), timeout + 30)
    except NotApplicable as exc:
        return result(NOT_APPLICABLE, str(exc))
    except CannotCheck as exc:
        return result(INCOMPLETE, str(exc))
    except (SpecFailure, SchemaViolation, WireError, UrlTooLong) as exc:
        return result(FAIL, f"{type(exc).__name__}: {exc}")
    except TimeoutError:
        return result(FAIL, "rule timed out")
    except Exception as exc:  # noqa: BLE001 - a server answer the client could not handle
        return result(FAIL, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")
    finally:
        await ctx.close()
    return result(PASS)


async def advertised(url: str) -> list[str] | None:
    """The connection types a long-polling handshake reply lists, when it is well-formed."""
    ctx = Context(url, "long-polling", timeout=10)
    try:
        reply = await ctx.client().handshake()
        types = reply.get("supportedConnectionTypes")
        if reply.get("successful") and isinstance(types, list):
            return [t for t in types if isinstance(t, str)]
        return None
    except Exception:  # noqa: BLE001 - broken over long-polling: ask each transport itself
        return None
    finally:
        await ctx.close()


async def transport_offered(url: str, transport: str, listed: list[str] | None) -> bool:
    """Whether the server offers `transport`: only a server that says it does not (a handshake
    reply that does not list it, a refusal of the connection type, no endpoint for it) makes a
    transport unsupported. A broken handshake is not a way out of the rules: they run, and fail."""
    if listed is not None and transport in listed:
        return True
    ctx = Context(url, transport, timeout=10)
    try:
        reply = await ctx.client().handshake()
    except (SchemaViolation, SpecFailure):
        return True  # it answered, wrongly (a malformed reply, or none that matches the request)
    except WireError as exc:
        # No such endpoint or method, or a refused upgrade: not offered. Anything else (a
        # reply that cannot be read) is the server answering wrongly.
        return exc.status is None or exc.status < 400
    except Exception:  # noqa: BLE001 - the connection itself failed (e.g. upgrade refused)
        return False
    finally:
        await ctx.close()
    if reply.get("successful") is True:
        return transport in (reply.get("supportedConnectionTypes") or [])
    return not str(reply.get("error", "")).startswith("406")


async def run_suite(
    url: str,
    transports: tuple[str, ...] = TRANSPORTS,
    profiles: tuple[str, ...] = tuple(PROFILES),
    only: str | None = None,
    concurrency: int = 8,
) -> list[Result]:
    rules = [r for r in all_rules() if r.profile in profiles and (not only or only in r.id)]
    results: list[Result] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def one(rule: Rule, transport: str) -> Result:
        async with semaphore:
            return await run_rule(rule, url, transport)

    listed = await advertised(url)
    for transport in transports:
        if not await transport_offered(url, transport, listed):
            results.extend(
                Result(
                    r.id,
                    transport,
                    r.profile,
                    r.section,
                    UNSUPPORTED,
                    f"server does not offer {transport}",
                )
                for r in rules
            )
            continue
        results.extend(await asyncio.gather(*(one(r, transport) for r in rules)))
    return results


def summary(results: list[Result]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for r in results:
        bucket = counts.setdefault(f"{r.profile}/{r.transport}", {})
        bucket[r.outcome] = bucket.get(r.outcome, 0) + 1
    return counts


def markdown_report(url: str, results: list[Result]) -> str:
    transports = list(dict.fromkeys(r.transport for r in results))
    by_rule: dict[str, dict[str, Result]] = {}
    for r in results:
        by_rule.setdefault(r.rule, {})[r.transport] = r
    lines = [
        f"# Bayeux conformance: {url}",
        "",
        "| rule | profile | spec section | " + " | ".join(transports) + " |",
        "|---|---|---|" + "---|" * len(transports),
    ]
    for rule_id, cells in by_rule.items():
        first = next(iter(cells.values()))
        section = f"[{first.section}]({SPEC}{first.section})"
        lines.append(
            f"| `{rule_id}` | {first.profile} | {section} | "
            + " | ".join(cells[t].outcome if t in cells else "" for t in transports)
            + " |"
        )
    failures = [r for r in results if r.outcome == FAIL]
    if failures:
        lines += ["", "## Failures", ""]
        for r in failures:
            lines.append(f"- `{r.rule}` over {r.transport}: {r.detail.splitlines()[0]}")
    unchecked = [r for r in results if r.outcome == INCOMPLETE]
    if unchecked:
        lines += ["", "## Could not be checked (the run is incomplete)", ""]
        for r in unchecked:
            lines.append(f"- `{r.rule}` over {r.transport}: {r.detail}")
    skipped = [r for r in results if r.outcome == NOT_APPLICABLE and r.detail]
    if skipped:
        lines += ["", "## Not applicable", ""]
        for r in skipped:
            lines.append(f"- `{r.rule}` over {r.transport}: {r.detail}")
    return "\n".join(lines) + "\n"


def json_report(url: str, results: list[Result]) -> str:
    return json.dumps(
        {"url": url, "summary": summary(results), "results": [asdict(r) for r in results]}, indent=2
    )
