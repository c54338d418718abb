"""The web console (/ui) in headless Chromium against the whole service: an operator logs
in with a key, writes a config in the editor (validated as they type), runs it and
watches it complete over the live stream, replays it from a stage after a dry run,
starts and stops a pipeline and sees a refused action's error; a read key sees the same
pages without the buttons, and the server refuses its writes anyway. Each page leaves a
screenshot in docs/console/."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from services.adapters.api_keys import Scope
from tests.entrypoints.http.support import create_api_key
from tests.entrypoints.ui.conftest import browsing, log_in, screenshot
from tests.runtimes.orchestrator.e2e_support import Stack, orders_document

pytestmark = pytest.mark.broker

LIVE_TIMEOUT_MS = 90_000  # an execution of the example completes in seconds; this ends a hang


def last_segment(page: Page) -> str:
    return page.url.split("?", 1)[0].rsplit("/", 1)[1]


async def type_document(page: Page, text: str) -> None:
    """The editor's text replaced, as a paste and a key would (htmx validates on keyup)."""
    editor = page.get_by_label("Document (YAML or JSON)")
    await editor.fill(text)
    await editor.press("End")


# --- logging in ------------------------------------------------------------------------------


async def test_a_key_logs_in_once_and_the_home_page_shows_the_numbers(
    browser: Browser, base_url: str, write_key: str
) -> None:
    async with browsing(browser, base_url) as page:
        await page.goto("/ui")  # not logged in: the login page
        await expect(page).to_have_url(re.compile(r"/ui/login$"))
        await page.get_by_label("API key").fill("pk_not-a-key")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator("#login-problem")).to_contain_text("not a live API key")
        await screenshot(page, "login")

        await log_in(page, write_key)
        await expect(page.get_by_role("heading", name="Home", level=1)).to_be_visible()
        for title in ("Pipelines", "Executions running", "Failed in the last hour"):
            await expect(page.get_by_role("heading", name=title)).to_be_visible()
        await expect(page.locator("[data-number=running]")).to_have_text(re.compile(r"^\d+$"))
        cookie = next(c for c in await page.context.cookies() if c["name"] == "pipelines_console")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert write_key not in cookie["value"]  # an opaque session id, not the key

        # Kept for the session: another page needs no key again.
        await page.goto("/ui/configs")
        await expect(page.get_by_role("heading", name="Configs", level=1)).to_be_visible()
        await page.get_by_role("button", name="Log out").click()
        await expect(page).to_have_url(re.compile(r"/ui/login$"))
        await page.goto("/ui/configs")
        await expect(page).to_have_url(re.compile(r"/ui/login$"))


# --- a config, run, watched live, replayed -----------------------------------------------------


async def test_a_config_written_in_the_editor_runs_completes_live_and_replays_after_a_dry_run(
    browser: Browser, base_url: str, write_key: str, stack: Stack
) -> None:
    name = f"ui-orders-{uuid.uuid4().hex[:6]}"
    async with browsing(browser, base_url) as page:
        await log_in(page, write_key)
        await page.goto("/ui/configs/new")
        await page.get_by_label("Name").fill(name)
        # Validated as typed: an unknown top-level key is reported at its path.
        await type_document(page, orders_document() + "colour: blue\n")
        report = page.locator("#live-report")
        await expect(report.locator(".report")).to_have_attribute("data-valid", "false")
        await expect(report).to_contain_text("colour")
        await screenshot(page, "config-editor")
        await type_document(page, orders_document())
        await expect(report.locator(".report")).to_have_attribute("data-valid", "true")
        await page.get_by_role("button", name="Create config").click()
        await page.wait_for_url(re.compile(r"/ui/configs/[0-9a-f-]{36}(\?.*)?$"))
        await expect(page.get_by_role("heading", name=f"Config {name}")).to_be_visible()
        await expect(page.locator("#document")).to_contain_text("validate:")
        await screenshot(page, "config")

        tag = f"ui-run-{uuid.uuid4().hex[:6]}"
        await page.get_by_label("Tag (optional)").fill(tag)
        await page.get_by_role("button", name="Run config").click()
        await page.wait_for_url(re.compile(r"/ui/executions/[0-9a-f-]{36}(\?.*)?$"))
        parent_id = last_segment(page)
        # Live: the stream's events drive the status and end with it.
        await expect(page.locator("#live-status")).to_have_text(
            "completed", timeout=LIVE_TIMEOUT_MS
        )
        await expect(page.locator("#live-state")).to_contain_text("ended (finished)")
        await expect(page.locator("#live-events li").first).to_be_visible()
        detail = page.locator("#detail")
        await expect(detail.locator("[data-field=status]")).to_contain_text("completed")
        for route in ("validate", "enrich", "notify"):
            row = detail.locator(f"tr[data-stage={route}]")
            await expect(row.locator("[data-count=in]")).to_have_text("1")
        await screenshot(page, "execution")

        # Replay from enrich to notify: the dry run's plan first, nothing made.
        await page.get_by_label("From stage").select_option("enrich")
        await page.get_by_label("To route").select_option("notify")
        await page.get_by_role("button", name="Dry run").click()
        plan = page.locator("#replay-plan")
        await expect(plan).to_contain_text("Dry run")
        await expect(plan.locator("[data-plan=message_count]")).to_have_text("1")
        await expect(plan).to_contain_text("notify")
        listed = await stack.client.get("/api/v1/executions", params={"tag": tag})
        assert listed.json()["total"] == 1
        await plan.scroll_into_view_if_needed()
        await screenshot(page, "replay-dry-run")
        await plan.get_by_role("button", name="Confirm replay").click()
        await page.wait_for_url(re.compile(rf"/ui/executions/(?!{parent_id})[0-9a-f-]{{36}}"))
        child_id = last_segment(page)
        assert child_id != parent_id
        await expect(page.locator("#live-status")).to_have_text(
            "completed", timeout=LIVE_TIMEOUT_MS
        )
        lineage = page.locator("#detail")
        await expect(lineage.get_by_role("link", name=parent_id).first).to_be_visible()
        await expect(lineage.locator("[data-field=status]")).to_contain_text("completed")

        # The parent lists the replay; the list filters by tag and status.
        await page.goto(f"/ui/executions/{parent_id}")
        await expect(page.locator("#replays")).to_contain_text(child_id)
        await page.goto("/ui/executions")
        await page.get_by_label("Tag").fill(tag)
        await page.get_by_label("Status").select_option("completed")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("tr[data-execution]")).to_have_count(1)
        await expect(page.locator(f"tr[data-execution='{parent_id}']")).to_be_visible()
        await page.get_by_label("Tag").fill("")
        async with page.expect_navigation():
            await page.get_by_role("button", name="Filter").click()
        await screenshot(page, "executions")


async def test_a_config_updates_to_a_new_version_and_a_refused_save_shows_its_report(
    browser: Browser, base_url: str, write_key: str, stack: Stack
) -> None:
    config_id = await stack.create_config(orders_document(), name="ui-edit")
    async with browsing(browser, base_url) as page:
        await log_in(page, write_key)
        await page.goto(f"/ui/configs/{config_id}")
        await page.get_by_role("link", name="Edit").click()
        await expect(page.get_by_role("heading", name="Edit config ui-edit")).to_be_visible()
        # The stored report is shown before any key is pressed.
        await expect(page.locator("#live-report .report")).to_have_attribute("data-valid", "true")

        await type_document(page, "routes: {}\ncolour: blue\n")
        await page.get_by_role("button", name="Save a new version").click()
        refusal = page.locator("#save-result .refusal")
        await expect(refusal).to_have_attribute("data-error-code", "ConfigValidationFailed")
        await expect(page.locator("#save-result .issues")).to_contain_text("colour")

        await page.get_by_label("Name").fill("ui-edited")
        await type_document(page, orders_document())
        await page.get_by_role("button", name="Save a new version").click()
        await page.wait_for_url(re.compile(rf"/ui/configs/{config_id}\?min_version="))
        await expect(page.get_by_role("heading", name="Config ui-edited")).to_be_visible()
        await expect(page.locator(".facts")).to_contain_text("2")
    stored = (await stack.client.get(f"/api/v1/configs/{config_id}")).json()
    assert (stored["name"], stored["version"]) == ("ui-edited", 2)


async def test_cancelling_a_finished_execution_is_refused_with_its_error(
    browser: Browser, base_url: str, write_key: str, stack: Stack
) -> None:
    execution_id = await stack.started(await stack.create_config(orders_document()))
    await stack.until_status(execution_id, "completed")
    async with browsing(browser, base_url) as page:
        await log_in(page, write_key)
        await page.goto(f"/ui/executions/{execution_id}")
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Cancel execution").click()
        refusal = page.locator("#cancel-result .refusal")
        await expect(refusal).to_have_attribute("data-error-code", "RunAlreadyTerminal")
        await expect(refusal).to_contain_text("409")


# --- pipelines ---------------------------------------------------------------------------------


async def created_config(stack: Stack, name: str = "ui-pipeline") -> str:
    return str(await stack.create_config(orders_document(), name=name))


async def test_a_pipeline_starts_and_stops_from_its_page_and_a_refusal_shows_its_error(
    browser: Browser, base_url: str, write_key: str, stack: Stack, reconciler: None
) -> None:
    config_id = await created_config(stack)
    name = f"ui-pipe-{uuid.uuid4().hex[:6]}"
    async with browsing(browser, base_url) as page:
        await log_in(page, write_key)
        await page.goto("/ui/pipelines")
        form = page.locator("form", has=page.get_by_role("button", name="Create pipeline"))
        await form.get_by_label("Name").fill(name)
        await form.get_by_label("Config").select_option(config_id)
        await form.get_by_role("button", name="Create pipeline").click()
        await page.wait_for_url(f"**/ui/pipelines/{name}?*")
        status = page.locator("#pipeline-status")
        await expect(status.locator("[data-field=deployment_status]")).to_contain_text("Stopped")
        # Its events stream in (the watch stream, with a stream token).
        await expect(page.locator("#stream-state")).to_have_text("live")

        await page.get_by_label("Start as").select_option("running")
        await page.get_by_role("button", name="Start", exact=True).click()
        result = page.locator("#action-result")
        await expect(result).to_contain_text("Start (initial=running) accepted")
        await expect(status.locator("[data-field=deployment_desired_status]")).to_contain_text(
            "Running"
        )
        await expect(status.locator("[data-field=deployment_status]")).to_contain_text(
            "Running", timeout=LIVE_TIMEOUT_MS
        )

        # Refused: a running pipeline cannot be deleted; the page shows the API's error.
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Delete").click()
        refusal = result.locator(".refusal")
        await expect(refusal).to_be_visible()
        code = await refusal.get_attribute("data-error-code")
        assert code and code.startswith("DeleteRestricted"), code
        await expect(refusal.locator(".error-code")).to_have_text(code)
        await screenshot(page, "pipeline")

        await page.get_by_label("Stop by").select_option("true")
        await page.get_by_role("button", name="Stop", exact=True).click()
        await expect(result).to_contain_text("Stop (force=true) accepted")
        await expect(status.locator("[data-field=deployment_status]")).to_contain_text(
            "Stopped", timeout=LIVE_TIMEOUT_MS
        )
        history = status.get_by_role("table")
        await expect(history).to_contain_text("Running")

        await page.goto("/ui/pipelines")
        await expect(page.locator(f"tr[data-pipeline='{name}']")).to_contain_text("Stopped")
        await screenshot(page, "pipelines")

        # Cleared, it may go: the delete leads back to the list, without it.
        await page.get_by_role("link", name=name).click()
        await page.get_by_role("button", name="Clear storage").click()
        await expect(page.locator("#action-result")).to_contain_text("Clear storage accepted")
        await expect(page.locator("[data-field=storage_status]")).to_have_text(
            "Cleared", timeout=LIVE_TIMEOUT_MS
        )
        page.once("dialog", lambda dialog: dialog.accept())
        await page.get_by_role("button", name="Delete").click()
        await page.wait_for_url(re.compile(r"/ui/pipelines$"))
        await expect(page.locator(f"tr[data-pipeline='{name}']")).to_have_count(0)


# --- a read key --------------------------------------------------------------------------------


async def test_a_read_key_sees_everything_and_is_offered_no_button_and_refused_anyway(
    browser: Browser, base_url: str, read_key: str, stack: Stack
) -> None:
    config_id = await created_config(stack, "ui-read")
    execution_id = await stack.started(await stack.create_config(orders_document()))
    name = f"ui-read-{uuid.uuid4().hex[:6]}"
    created = await stack.client.post("/v0/pipelines", json={"name": name, "config_id": config_id})
    assert created.status_code == 201, created.text
    async with browsing(browser, base_url) as page:
        await log_in(page, read_key)
        await expect(page.locator("#read-only-note")).to_be_visible()
        await page.goto(f"/ui/pipelines/{name}")
        await expect(page.locator("#pipeline-status")).to_contain_text("Stopped")
        await expect(page.locator("button[data-action]")).to_have_count(0)
        await page.goto(f"/ui/configs/{config_id}")
        await expect(page.locator("#document")).to_contain_text("routes:")
        await expect(page.get_by_role("button", name="Run config")).to_have_count(0)
        await page.goto(f"/ui/executions/{execution_id}")
        await expect(page.get_by_role("heading", name="Stage runs")).to_be_visible()
        for button in ("Cancel execution", "Dry run"):
            await expect(page.get_by_role("button", name=button)).to_have_count(0)
        await page.goto("/ui/pipelines")
        await expect(page.get_by_role("button", name="Create pipeline")).to_have_count(0)

        # The buttons are not there, and the server refuses their requests all the same.
        answer = await page.request.post(
            f"/ui/pipelines/{name}/actions/start",
            headers={"HX-Request": "true", "Content-Type": "application/x-www-form-urlencoded"},
            data="initial=running",
        )
        assert answer.status == 200
        text = await answer.text()
        assert 'data-error-code="InsufficientPermissions"' in text, text
        pipeline = (await stack.client.get(f"/v0/pipelines/{name}")).json()
        assert pipeline["deployment_desired_status"] == "Stopped"

        # Pages that do not exist say so, in a page.
        for path in ("/ui/executions/not-an-id", "/ui/nowhere", f"/ui/executions/{uuid.uuid4()}"):
            loaded = await page.goto(path)
            assert loaded is not None and loaded.status == 404, path
            await expect(page.get_by_role("heading", name="Not found")).to_be_visible()


async def test_a_revoked_key_logs_its_session_out(
    browser: Browser, base_url: str, stack: Stack
) -> None:
    name = f"ui-revoked-{uuid.uuid4().hex[:6]}"
    key = await asyncio.to_thread(create_api_key, stack.settings.event_store_url, Scope.READ, name)
    async with browsing(browser, base_url) as page:
        await log_in(page, key)
        revoked = await stack.client.delete(f"/v0/api-keys/{name}")
        assert revoked.status_code == 200, revoked.text
        await page.goto("/ui/pipelines")
        await expect(page).to_have_url(re.compile(r"/ui/login$"))


async def test_a_write_without_the_console_header_is_not_taken(
    browser: Browser, base_url: str, write_key: str, stack: Stack
) -> None:
    """A cross-site form cannot send HX-Request: such a POST does nothing."""
    config_id = await created_config(stack, "ui-csrf")
    async with browsing(browser, base_url) as page:
        await log_in(page, write_key)
        answer = await page.request.post(
            f"/ui/configs/{config_id}/run", max_redirects=0, form={"tag": "csrf"}
        )
        assert answer.status == 303
    listed = await stack.client.get("/api/v1/executions", params={"tag": "csrf"})
    assert listed.json()["total"] == 0


# --- runs, a narrow window, the AsyncAPI page ---------------------------------------------------


async def test_runs_of_seeds_002_and_003_show_their_status_in_each_vocabulary(
    browser: Browser, base_url: str, write_key: str, stack: Stack
) -> None:
    config_id = await created_config(stack, "ui-runs")
    name = f"ui-runs-{uuid.uuid4().hex[:6]}"
    created = await stack.client.post("/v0/pipelines", json={"name": name, "config_id": config_id})
    assert created.status_code == 201, created.text
    run = await stack.client.post(f"/pipelines/v0/pipelines/{name}/runs", json={})
    assert run.status_code == 200, run.text
    run_id = run.json()["content"]["id"]
    started = await stack.client.post(f"/api/v1/jobs/runs/{run_id}/start")
    assert started.status_code == 200, started.text
    async with browsing(browser, base_url) as page:
        await log_in(page, write_key)
        await page.goto("/ui/runs")
        row = page.locator(f"tr[data-run='{run_id}']")
        await expect(row.locator("[data-vocabulary=esper]")).to_contain_text("running")
        await expect(row.locator("[data-vocabulary=marquez]")).to_contain_text("RUNNING")
        await expect(row).to_contain_text(name)
        await screenshot(page, "runs")


async def no_page_overflow(page: Page) -> bool:
    width: Any = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    return bool(width)


async def test_the_pages_fit_a_narrow_window(
    browser: Browser, base_url: str, write_key: str
) -> None:
    async with browsing(browser, base_url, viewport={"width": 390, "height": 800}) as page:
        await log_in(page, write_key)
        for path in ("/ui/", "/ui/pipelines", "/ui/configs", "/ui/executions", "/ui/runs"):
            await page.goto(path)
            await expect(page.locator("h1")).to_be_visible()
            if not await no_page_overflow(page):
                await screenshot(page, "narrow-overflow")
                raise AssertionError(f"{path} is wider than the window")


async def test_the_asyncapi_page_renders_without_a_cdn(browser: Browser, base_url: str) -> None:
    async with browsing(browser, base_url) as page:
        await page.goto("/asyncapi")
        # The vendored React component renders the document (its channels) in the page.
        await expect(page.locator("#asyncapi")).to_contain_text("commands", timeout=30_000)
        await expect(page.locator("#asyncapi")).to_contain_text("pipeline-service Kafka interface")
        await screenshot(page, "asyncapi")


async def test_the_swagger_and_redoc_pages_render_without_a_cdn(
    browser: Browser, base_url: str
) -> None:
    async with browsing(browser, base_url) as page:
        await page.goto("/docs")
        # Swagger UI's bundle renders the OpenAPI document into .swagger-ui.
        swagger = page.locator(".swagger-ui")
        await expect(swagger.locator(".info .title")).to_contain_text("pipeline-service")
        await expect(swagger.locator(".opblock-tag-section").first).to_be_visible()
        await page.goto("/redoc")
        await expect(page.locator("redoc h1").first).to_contain_text("pipeline-service")
        # The side menu's Redocly logo (an image on cdn.redoc.ly in ReDoc's bundle, taken
        # out of the vendored one) would be the last request to another host.
        await expect(page.get_by_role("link", name="API docs by Redocly")).to_be_visible()
        await page.wait_for_load_state("networkidle")


async def test_the_home_page_counts_what_the_service_did(
    browser: Browser, base_url: str, write_key: str, stack: Stack
) -> None:
    """Last in the module: the tests before ran configs and pipelines. The stack's command
    handler and projector run in this process, so their metrics are here to show."""
    async with browsing(browser, base_url) as page:
        await log_in(page, write_key)
        await expect(page.locator("[data-number=pipelines]")).not_to_have_text("0")
        accepted = await page.locator("[data-number=accepted]").inner_text()
        rejected = await page.locator("[data-number=rejected]").inner_text()
        assert int(accepted) > 0 and int(rejected) > 0, (accepted, rejected)  # the refusals
        await expect(page.locator("[data-number=delay]")).to_contain_text(" s")
        await screenshot(page, "home")
