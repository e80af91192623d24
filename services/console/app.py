"""The supervisor console: FastAPI + Jinja2 pages over the monitor's and notifier's APIs.

Pages: the live board (home), a ticket's page, reports, silences, notifications, login.
Server-rendered HTML that works without JavaScript except for the live parts (htmx
re-fetches the board when the SLA-event stream says something changed; ECharts draws the
report charts), all from static/vendor: nothing from a CDN.

Who may do what is shared/auth.py's: a page needs a session (or a bearer key) of role
``viewer``; silencing and acknowledging need ``operator``, a CSRF token for cookie
sessions, and are logged with the key's name.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import secrets
import time as time_
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import StreamingResponse

from slawatch.services.console import i18n
from slawatch.services.console.backend import Backend, BackendError
from slawatch.services.console.live import LiveFeed
from slawatch.services.console.metrics import ConsoleMetrics
from slawatch.services.console.sessions import COOKIE, Session, Sessions
from slawatch.services.console.settings import ConsoleSettings
from slawatch.shared.auth import DEV_TOKEN, LADDER, access_from, bearer_token
from slawatch.shared.tasks import cancel_all, supervise

log = logging.getLogger("slawatch.console")

HERE = Path(__file__).parent
BOARD_FILTERS = ("policy", "customer_tier", "priority", "channel", "group", "assignee")
BOARD_STATES = ("all", "at_risk", "breached", "paused")
GROUP_BYS = ("policy", "customer_tier", "channel", "priority", "assignee", "group", "customer_id")
BUCKETS = ("day", "week", "month")
STATUSES = ("queued", "sent", "failed", "dlq", "silenced", "inhibited", "cleared", "acknowledged")
SILENCE_FIELDS = (
    "ticket_id",
    "group",
    "customer_tier",
    "priority",
    "channel",
    "policy",
    "target",
    "kind",
    "assignee",
    "receiver",
)
DURATIONS = (("1h", "1 hour"), ("4h", "4 hours"), ("1d", "1 day"), ("1w", "1 week"))
ZONES = (
    "UTC",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Australia/Sydney",
)
PAGE_LIMIT = 50
LOGIN_FAILURES = 10  # failed logins from one address within LOGIN_WINDOW_S, then 429
LOGIN_WINDOW_S = 60.0
# The compliance table: (column of the monitor's report, heading, how it is shown).
REPORT_COLUMNS = (
    ("tickets", "Tickets", "int"),
    ("targets_met", "Targets met", "int"),
    ("targets_breached", "Targets breached", "int"),
    ("sla_met_pct", "SLA met %", "pct"),
    ("first_response_p50_s", "First response p50", "dur"),
    ("first_response_p90_s", "First response p90", "dur"),
    ("resolution_p50_s", "Resolution p50", "dur"),
    ("resolution_p90_s", "Resolution p90", "dur"),
    ("solved", "Solved", "int"),
    ("fcr_pct", "FCR %", "pct"),
    ("csat_avg", "CSAT", "num"),
    ("nps", "NPS", "num"),
    ("aht_mean_s", "AHT", "dur"),
    ("aht_p90_s", "AHT p90", "dur"),
    ("agent_work_business_p50_s", "Agent work p50", "dur"),
    ("requester_wait_business_p50_s", "Requester wait p50", "dur"),
    ("retention_pct", "Retention %", "pct"),
    ("churn_breached_pct", "Churn after breach %", "pct"),
    ("churn_unbreached_pct", "Churn without breach %", "pct"),
)


class LoginRequired(Exception):
    pass


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# ---------------------------------------------------------------- formatting


def zone_of(name: str | None) -> ZoneInfo | None:
    if not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def fmt_time(value: str | None, zone: ZoneInfo) -> str:
    if not value:
        return "–"
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(zone)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def fmt_cell(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "dur":
        return fmt_duration(value)
    if kind == "pct":
        return f"{value:.1f}"
    if kind == "num":
        return f"{value:.2f}" if isinstance(value, float) else str(value)
    return str(value)


def safe_next(value: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value[:2000]


def _clean(value: str | None, limit: int = 256) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > limit or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise Refused(422, "values are at most 256 characters, without control characters")
    return value


# ---------------------------------------------------------------- the app


@dataclass
class Console:
    settings: ConsoleSettings
    sessions: Sessions
    backend: Backend
    feed: LiveFeed
    metrics: ConsoleMetrics
    env: Environment


def create_app(settings: ConsoleSettings) -> FastAPI:
    access = access_from(settings)
    secret = (settings.console_session_secret or "").encode()
    if not secret:
        log.warning(
            "SLAWATCH_CONSOLE_SESSION_SECRET is unset: a random key is used, so logins end "
            "when this process stops (env=dev only)"
        )
        secret = secrets.token_bytes(32)
    token = settings.console_service_token or (DEV_TOKEN if settings.is_dev else None)
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(("html",)),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = fmt_duration
    console = Console(
        settings=settings,
        sessions=Sessions(secret, settings.console_session_ttl_s, access.keys),
        backend=Backend(settings.console_monitor_url, settings.console_notifier_url, token),
        feed=LiveFeed(settings),
        metrics=ConsoleMetrics(),
        env=env,
    )
    tasks: list[asyncio.Task] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.kafka_bootstrap:
            tasks.append(asyncio.create_task(supervise("live feed", console.feed.run, log)))
        try:
            yield
        finally:
            await cancel_all(tasks)
            await console.backend.close()

    app = FastAPI(
        title="slawatch console",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.console = console
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    console.feed.on_event = console.metrics.sla_events.inc

    # ------------------------------------------------------------ who is asking

    def session_of(request: Request) -> Session | None:
        header = request.headers.get("authorization")
        if header:
            principal = access.authenticate(bearer_token(header))
            if principal is None or principal.role not in LADDER:
                raise Refused(401, "missing or unknown bearer token")
            return Session(principal.name, principal.role, 0, "", kind="bearer")
        if settings.console_proxy_user_header:
            user = request.headers.get(settings.console_proxy_user_header)
            if user:
                name = _clean(user, 128) or ""
                return Session(name, settings.console_proxy_role, 0, "proxy:" + name, "proxy")
        return console.sessions.read(request.cookies.get(COOKIE))

    def need(request: Request, role: str = "viewer") -> Session:
        session = session_of(request)
        if session is None:
            raise LoginRequired()
        if not session.can(role):
            raise Refused(403, "Your key's role cannot do this.")
        request.state.session = session
        return session

    async def form_of(request: Request, session: Session) -> dict[str, str]:
        """The posted form; for cookie sessions only with the right CSRF token."""
        values = await read_form(request)
        if session.kind != "bearer":
            given = values.get("csrf_token") or request.headers.get("x-csrf-token")
            if not console.sessions.check_csrf(session, given):
                raise Refused(403, "the form has expired; reload the page and try again")
        return values

    def prefs(request: Request) -> tuple[str, ZoneInfo, str | None]:
        lang = i18n.choose(request.cookies.get("lang"), request.headers.get("accept-language"))
        zone_name = unquote(request.cookies.get("tz") or "")
        zone = zone_of(zone_name)
        return lang, zone or ZoneInfo("UTC"), zone_name if zone else None

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        lang, zone, zone_name = prefs(request)
        session: Session | None = getattr(request.state, "session", None)
        t = i18n.translator(lang)
        page = console.env.get_template(template).render(
            t=t,
            lang=lang,
            zone=zone,
            zone_name=zone_name,
            zones=ZONES,
            time=lambda v: fmt_time(v, zone),
            session=session,
            csrf=console.sessions.csrf_token(session) if session else "",
            can_operate=bool(session and session.can("operator")),
            path=request.url.path,
            here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            notice=request.query_params.get("notice"),
            **context,
        )
        return HTMLResponse(
            page,
            status_code=status,
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
            },
        )

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request") or request.url.path == "/live":
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return render(request, "error.html", status=exc.status, message=exc.message)

    @app.exception_handler(BackendError)
    async def backend_error(request: Request, exc: BackendError) -> Response:
        console.metrics.backend_errors.labels(exc.service).inc()
        if exc.status is None:
            log.warning("console: %s unreachable (%s)", exc.service, exc.detail)
            return render(
                request, "error.html", status=502, unreachable=exc.service, message=exc.detail
            )
        status = exc.status if 400 <= exc.status < 500 and exc.status not in (401, 403) else 502
        if exc.status in (401, 403):
            log.error("console: %s refused the console's service key (%d)", exc.service, exc.status)
        return render(request, "error.html", status=status, refused=exc.service, message=exc.detail)

    def changed(action: str, session: Session, what: str, outcome: str = "ok") -> None:
        console.metrics.state_changes.labels(action, outcome).inc()
        log.info("console: %s %s by %s (%s)", action, what, session.name, outcome)

    def cookie_secure(request: Request) -> bool:
        mode = settings.console_cookie_secure
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    # ------------------------------------------------------------ login

    # Failed logins per client address in the last LOGIN_WINDOW_S: guessing keys is slow.
    failures: dict[str, deque[float]] = {}

    def throttled(address: str, now: float) -> bool:
        recent = failures.get(address)
        while recent and recent[0] < now - LOGIN_WINDOW_S:
            recent.popleft()
        return recent is not None and len(recent) >= LOGIN_FAILURES

    def failed(address: str, now: float) -> None:
        if len(failures) > 10_000:  # bounded: forget the quietest addresses
            for key in [k for k, v in failures.items() if not v or v[-1] < now - LOGIN_WINDOW_S]:
                del failures[key]
            if len(failures) > 10_000:
                failures.clear()
        failures.setdefault(address, deque(maxlen=LOGIN_FAILURES)).append(now)

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> Response:
        if session_of(request) is not None:
            return RedirectResponse(safe_next(next), status_code=303)
        return render(request, "login.html", next=safe_next(next))

    @app.post("/login")
    async def login(request: Request) -> Response:
        address = request.client.host if request.client else "-"
        now = time_.monotonic()
        if throttled(address, now):
            console.metrics.logins.labels("throttled").inc()
            return render(request, "login.html", status=429, next="/", throttled=True)
        form = await read_form(request)
        key = str(form.get("key") or "").strip()
        target = safe_next(str(form.get("next") or "/"))
        principal = access.authenticate(key) if key and len(key) <= 512 else None
        if principal is None or principal.role not in LADDER:
            console.metrics.logins.labels("refused").inc()
            failed(address, now)
            log.info("console: login refused")
            return render(request, "login.html", status=401, next=target, failed=True)
        cookie, _ = console.sessions.issue(principal.name, principal.role)
        console.metrics.logins.labels("ok").inc()
        log.info("console: login by %s (%s)", principal.name, principal.role)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=settings.console_session_ttl_s,
            httponly=True,
            samesite="strict",
            secure=cookie_secure(request),
            path="/",
        )
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = need(request)
        await form_of(request, session)
        log.info("console: logout by %s", session.name)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/prefs")
    async def set_prefs(
        request: Request, lang: str | None = None, tz: str | None = None, next: str = "/"
    ) -> Response:
        response = RedirectResponse(safe_next(next), status_code=303)
        year = 365 * 86_400
        if lang in i18n.LANGUAGES:
            response.set_cookie("lang", lang, max_age=year, samesite="strict", path="/")
        if tz and zone_of(tz):
            response.set_cookie("tz", tz, max_age=year, samesite="strict", path="/")
        return response

    # ------------------------------------------------------------ board

    def board_params(request: Request) -> tuple[dict[str, Any], dict[str, str], int]:
        q = request.query_params
        state = q.get("state") or "all"
        if state not in BOARD_STATES:
            raise Refused(422, "state: one of all, at_risk, breached, paused")
        within = _clean(q.get("within"), 16) or settings.console_at_risk_window
        try:
            page = max(1, min(int(q.get("page") or 1), 100_000))
        except ValueError:
            raise Refused(422, "page: a whole number") from None
        filters = {name: _clean(q.get(name)) for name in BOARD_FILTERS}
        shown = {"state": state, "within": within, **{k: v for k, v in filters.items() if v}}
        size = settings.console_page_size
        api = {**shown, "limit": size, "offset": (page - 1) * size}
        return api, shown, page

    async def board_context(request: Request) -> dict[str, Any]:
        api, shown, page = board_params(request)
        board = await console.backend.board(api)
        tickets = sorted({i["ticket_id"] for i in board["items"]})
        acks = {
            (a["ticket_id"], a["target"], a["cycle"]): a
            for a in await console.backend.acknowledgements(tickets)
        }
        for item in board["items"]:
            item["ack"] = acks.get((item["ticket_id"], item["target"], item["cycle"]))
            alert = console.feed.latest_alert(item["ticket_id"], item["target"], item["cycle"])
            item["live"] = alert
        query = {k: v for k, v in shown.items() if not (k == "state" and v == "all")}

        def page_url(n: int) -> str:
            return "/?" + urlencode({**query, "page": n})

        return {
            "board": board,
            "shown": shown,
            "page": page,
            "pages": {
                "previous": page_url(page - 1) if page > 1 else None,
                "next": page_url(page + 1) if board["next_offset"] is not None else None,
            },
            "fragment_url": "/board?" + urlencode({**query, "page": page}),
            "recent": list(console.feed.recent)[:10],
            "filters": BOARD_FILTERS,
            "states": BOARD_STATES,
        }

    @app.get("/", response_class=HTMLResponse)
    async def board_page(request: Request) -> Response:
        need(request)
        return render(request, "board.html", **await board_context(request))

    @app.get("/board", response_class=HTMLResponse)
    async def board_fragment(request: Request) -> Response:
        need(request)
        return render(request, "_board.html", **await board_context(request))

    @app.get("/live")
    async def live(request: Request) -> Response:
        need(request)

        async def stream():
            console.metrics.live_clients.inc()
            try:
                async with console.feed.subscribe() as queue:
                    yield "retry: 2000\n: connected\n\n"
                    while True:
                        try:
                            async with asyncio.timeout(15):
                                event = await queue.get()
                        except TimeoutError:
                            yield ": ping\n\n"
                            continue
                        events = [event]
                        while not queue.empty() and len(events) < 200:
                            events.append(queue.get_nowait())
                        yield f"event: sla\ndata: {json.dumps(events, ensure_ascii=False)}\n\n"
            finally:
                console.metrics.live_clients.dec()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # ------------------------------------------------------------ ticket

    @app.get("/tickets/{ticket_id}", response_class=HTMLResponse)
    async def ticket_page(request: Request, ticket_id: str) -> Response:
        need(request)
        _clean(ticket_id, 128)
        described, timeline, log_page, acks, silences = await asyncio.gather(
            console.backend.ticket(ticket_id),
            console.backend.timeline(ticket_id),
            console.backend.notifications({"ticket_id": ticket_id, "limit": 200}),
            console.backend.acknowledgements([ticket_id], standing=False),
            console.backend.silences("active"),
        )
        if described is None:
            raise Refused(404, f"no ticket {ticket_id!r}")
        standing = {(a["ticket_id"], a["target"], a["cycle"]): a for a in acks if a["standing"]}
        for target in described["targets"]:
            target["ack"] = standing.get((ticket_id, target["target"], target["cycle"]))
        mine = [s for s in silences if ticket_id in (s.get("match") or {}).get("ticket_id", [])]
        return render(
            request,
            "ticket.html",
            ticket=described,
            timeline=(timeline or {}).get("lines", []),
            notifications=log_page["items"],
            acks=acks,
            silences=mine,
            durations=DURATIONS,
        )

    @app.post("/tickets/{ticket_id}/silence")
    async def silence_ticket(request: Request, ticket_id: str) -> Response:
        session = need(request, "operator")
        form = await form_of(request, session)
        _clean(ticket_id, 128)
        duration = _clean(form.get("duration"), 16) or "1h"
        body = {
            "match": {"ticket_id": [ticket_id]},
            "duration": duration,
            "comment": (form.get("comment") or "")[:2000],
            "created_by": session.name,
        }
        try:
            made = await console.backend.create_silence(body)
        except BackendError:
            changed("silence", session, f"ticket {ticket_id}", "refused")
            raise
        changed("silence", session, f"{made['id']} for ticket {ticket_id} ({duration})")
        return RedirectResponse(f"/tickets/{_q(ticket_id)}?notice=silenced", status_code=303)

    @app.post("/tickets/{ticket_id}/acknowledge")
    async def acknowledge(request: Request, ticket_id: str) -> Response:
        session = need(request, "operator")
        form = await form_of(request, session)
        _clean(ticket_id, 128)
        try:
            cycle = int(form.get("cycle") or 0)
        except ValueError:
            raise Refused(422, "cycle: a whole number") from None
        body = {
            "ticket_id": ticket_id,
            "target": form.get("target") or "",
            "cycle": cycle,
            "comment": (form.get("comment") or "")[:2000],
            "acknowledged_by": session.name,
        }
        try:
            made = await console.backend.acknowledge(body)
        except BackendError:
            changed("acknowledge", session, f"{ticket_id}/{body['target']}#{cycle}", "refused")
            raise
        changed("acknowledge", session, f"{ticket_id}/{made['target']}#{made['cycle']}")
        back = safe_next(form.get("next")) if form.get("next") else f"/tickets/{_q(ticket_id)}"
        sep = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{sep}notice=acknowledged", status_code=303)

    # ------------------------------------------------------------ reports

    async def report_context(request: Request) -> dict[str, Any]:
        q = request.query_params
        zone_name = q.get("tz") or unquote(request.cookies.get("tz") or "") or "UTC"
        zone = zone_of(zone_name)
        if zone is None:
            raise Refused(422, "tz: not an IANA time zone")
        today = datetime.now(zone).date()
        try:
            start = date.fromisoformat(q.get("from") or (today - timedelta(days=6)).isoformat())
            end = date.fromisoformat(q.get("to") or today.isoformat())
        except ValueError:
            raise Refused(422, "from/to: dates as YYYY-MM-DD") from None
        if end < start:
            raise Refused(422, "to: must not be before from")
        if (end - start).days > 3650:
            raise Refused(422, "from: at most ten years")
        group_by = q.get("group_by") or "policy"
        if group_by not in GROUP_BYS:
            raise Refused(422, "group_by: one of " + ", ".join(GROUP_BYS))
        bucket = q.get("bucket") or "day"
        if bucket not in BUCKETS:
            raise Refused(422, "bucket: day, week or month")
        window = {
            "from": datetime.combine(start, time(), zone).astimezone(UTC).isoformat(),
            "to": datetime.combine(end + timedelta(days=1), time(), zone)
            .astimezone(UTC)
            .isoformat(),
        }
        table, trend, by_tier, by_policy, series = await asyncio.gather(
            console.backend.compliance({**window, "group_by": group_by}),
            console.backend.compliance(
                {**window, "group_by": group_by, "bucket": bucket, "tz": zone_name}
            ),
            console.backend.compliance({**window, "group_by": "customer_tier"}),
            console.backend.compliance({**window, "group_by": "policy"}),
            console.backend.series({**window, "bucket": bucket, "tz": zone_name}),
        )
        t = i18n.translator(prefs(request)[0])

        def group_name(value: Any) -> str:  # the monitor's "(none)" is a word of the page
            return t("(none)") if value == "(none)" else str(value)

        rows = [
            [group_name(g[group_by])] + [fmt_cell(g.get(c), kind) for c, _, kind in REPORT_COLUMNS]
            for g in table["groups"]
        ]
        # Per group and bucket; a figure that moved abnormally is marked (docs/reports.md).
        trend_rows = [
            {
                "group": group_name(g[group_by]),
                "bucket": g["bucket"],
                "cells": [
                    (fmt_cell(g.get(c), kind), c in g["abnormal"]) for c, _, kind in REPORT_COLUMNS
                ],
            }
            for g in trend["groups"]
        ]
        points = series["series"]
        charts = {
            "buckets": [p[bucket] for p in points],
            "met": [p["sla_met_pct"] for p in points],
            "frt50": [p["first_response_p50_s"] for p in points],
            "frt90": [p["first_response_p90_s"] for p in points],
            "rt50": [p["resolution_p50_s"] for p in points],
            "rt90": [p["resolution_p90_s"] for p in points],
            "tiers": [
                [group_name(g["customer_tier"]), g["targets_breached"]] for g in by_tier["groups"]
            ],
            "policies": [
                [group_name(g["policy"]), g["targets_breached"]] for g in by_policy["groups"]
            ],
        }
        params = {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "group_by": group_by,
            "bucket": bucket,
            "tz": zone_name,
        }
        return {
            "params": params,
            "group_by": group_by,
            "headings": [group_by] + [h for _, h, _ in REPORT_COLUMNS],
            "rows": rows,
            "trend_rows": trend_rows,
            "charts": charts,
            "csv_url": "/reports.csv?" + urlencode(params),
            "group_bys": GROUP_BYS,
            "buckets": BUCKETS,
        }

    @app.get("/reports", response_class=HTMLResponse)
    async def reports_page(request: Request) -> Response:
        need(request)
        return render(request, "reports.html", **await report_context(request))

    @app.get("/reports.csv")
    async def reports_csv(request: Request) -> Response:
        need(request)
        context = await report_context(request)
        lang, _, _ = prefs(request)
        t = i18n.translator(lang)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow([t(h) for h in context["headings"]])
        writer.writerows(context["rows"])
        name = f"slawatch-compliance-{context['params']['from']}-{context['params']['to']}.csv"
        return PlainTextResponse(
            "\ufeff" + buffer.getvalue(),  # a BOM, so spreadsheet programs read UTF-8
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # ------------------------------------------------------------ silences

    @app.get("/silences", response_class=HTMLResponse)
    async def silences_page(request: Request) -> Response:
        need(request)
        state = request.query_params.get("state") or None
        if state not in (None, "active", "pending", "expired"):
            raise Refused(422, "state: active, pending or expired")
        items = await console.backend.silences(state)
        items.reverse()  # newest first
        return render(
            request,
            "silences.html",
            silences=items,
            state=state,
            fields=SILENCE_FIELDS,
            durations=DURATIONS,
        )

    @app.post("/silences")
    async def create_silence(request: Request) -> Response:
        session = need(request, "operator")
        form = await form_of(request, session)
        match: dict[str, list[str]] = {}
        for n in range(5):
            name, value = form.get(f"field{n}"), _clean(form.get(f"value{n}"))
            if not value:
                continue
            if name not in SILENCE_FIELDS:
                raise Refused(422, f"matcher {n + 1}: unknown field")
            match.setdefault(name, []).append(value)
        body = {
            "match": match,
            "duration": _clean(form.get("duration"), 16) or "1h",
            "comment": (form.get("comment") or "")[:2000],
            "created_by": session.name,
        }
        try:
            made = await console.backend.create_silence(body)
        except BackendError:
            changed("silence", session, json.dumps(match, ensure_ascii=False), "refused")
            raise
        changed("silence", session, f"{made['id']} {json.dumps(match, ensure_ascii=False)}")
        return RedirectResponse("/silences?notice=silenced", status_code=303)

    @app.post("/silences/{silence_id}/expire")
    async def expire_silence(request: Request, silence_id: str) -> Response:
        session = need(request, "operator")
        await form_of(request, session)
        _clean(silence_id, 64)
        await console.backend.expire_silence(silence_id)
        changed("expire", session, f"silence {silence_id}")
        return RedirectResponse("/silences?notice=expired", status_code=303)

    # ------------------------------------------------------------ notifications

    @app.get("/notifications", response_class=HTMLResponse)
    async def notifications_page(request: Request) -> Response:
        need(request)
        q = request.query_params
        status = q.get("status") or None
        if status not in (None, *STATUSES):
            raise Refused(422, "status: one of " + ", ".join(STATUSES))
        receiver, ticket_id = _clean(q.get("receiver"), 128), _clean(q.get("ticket_id"), 128)
        try:
            page = max(1, min(int(q.get("page") or 1), 100_000))
        except ValueError:
            raise Refused(422, "page: a whole number") from None
        params = {
            k: v
            for k, v in {"status": status, "receiver": receiver, "ticket_id": ticket_id}.items()
            if v
        }
        result = await console.backend.notifications(
            {**params, "limit": PAGE_LIMIT, "offset": (page - 1) * PAGE_LIMIT}
        )
        return render(
            request,
            "notifications.html",
            items=result["items"],
            filters=params,
            statuses=STATUSES,
            previous="/notifications?" + urlencode({**params, "page": page - 1})
            if page > 1
            else None,
            next_url="/notifications?" + urlencode({**params, "page": page + 1})
            if result["next_offset"] is not None
            else None,
        )

    # ------------------------------------------------------------ probes

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if console.feed.ready.is_set():
            return PlainTextResponse('{"status": "ready"}', media_type="application/json")
        return PlainTextResponse('{"status": "starting"}', 503, media_type="application/json")

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(console.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the console's forms are; no multipart parser needed)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused(415, "expected a form (application/x-www-form-urlencoded)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > 64_000:
            raise Refused(413, "form too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "malformed form") from None
    return {k: v for k, v in pairs if "\x00" not in v}


def _q(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


__all__ = ["create_app"]
