"""The web console in a real browser: Debian's chromium, headless, driven by
Playwright against a real `memfs serve` and real FUSE mounts of the same
database. Each test signs in through the URL the server printed, does what a
supervisor does, and checks the result through a mount; every page it visits
is checked for script dialogs and console errors, and screenshots of the main
pages go to $MEMFS_SHOTS_DIR (default target/console-shots; the README's are
in docs/console)."""

import os
import time

import pytest

from conftest import ROOT, wait_for

pw = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("MEMFS_SHOTS_DIR", os.path.join(ROOT, "target", "console-shots"))
SCRIPT = "<script>alert('memfs')</script>"
IMG = '"><img src=x onerror=alert(1)>'


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/setup.sh installs it)")
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """A signed-in browser page, and what went wrong on it."""

    def __init__(self, browser, world, url):
        self.world, self.url = world, url
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.ctx.new_page()
        self.dialogs, self.errors = [], []
        # Error statuses a test causes on purpose (a conflict page is a 409):
        # the browser logs them as console errors.
        self.expected = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(world.console_url)
        self.page.wait_for_url("**/console/stores")
        self.page.wait_for_load_state()

    def go(self, path):
        self.page.goto(self.url + path)
        self.page.wait_for_load_state()

    def shot(self, name, full=False):
        os.makedirs(SHOTS, exist_ok=True)
        self.page.screenshot(path=os.path.join(SHOTS, name + ".png"), full_page=full)

    def clean(self):
        assert self.dialogs == [], self.dialogs
        errors = [e for e in self.errors
                  if not any(f"status of {x}" in e for x in self.expected)]
        assert errors == [], errors

    def close(self):
        self.ctx.close()


@pytest.fixture
def console(world, browser):
    """(world, console page signed in as the operator, mountpoint of kb as agent planner)."""
    url, _ = world.serve()
    mp = world.mount("m1", "planner-7", "s-planner", "kb")
    c = Console(browser, world, url)
    try:
        yield world, c, os.path.join(mp, "kb")
        c.clean()
    finally:
        c.close()


def api_content(world, path):
    """The file's head as memfsctl sees it (committed, whoever wrote it)."""
    r = world.ctl("cat", f"kb/{path}", check=False)
    return r.stdout if r.returncode == 0 else None


def write(kb, path, text):
    """Writes a file through the agent's mount (one version, at close)."""
    full = os.path.join(kb, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text)


def test_sign_in_through_the_printed_url_once(world, browser):
    url, _ = world.serve()
    c = Console(browser, world, url)
    try:
        expect = pw.expect
        expect(c.page.get_by_role("heading", name="Stores")).to_be_visible()
        expect(c.page.get_by_role("link", name="kb")).to_be_visible()
        c.shot("stores")
        # The printed URL works once: a second browser is refused.
        other = browser.new_context()
        try:
            pg = other.new_page()
            resp = pg.goto(world.console_url)
            assert resp.status == 401
            expect(pg.get_by_text("already used or has expired")).to_be_visible()
        finally:
            other.close()
        c.clean()
    finally:
        c.close()


def test_open_a_file_edit_it_and_see_the_change_through_a_mount(console):
    world, c, kb = console
    expect = pw.expect
    write(kb, "facts.md", "# Facts\nAPI limit: 10 req/s\n")
    wait_for("the commit", lambda: api_content(world, "facts.md"))
    c.go("/console/s/kb")
    c.shot("tree")
    c.page.get_by_role("link", name="facts.md").click()
    expect(c.page.get_by_role("heading", name="facts.md")).to_be_visible()
    expect(c.page.locator("table.code")).to_contain_text("API limit: 10 req/s")
    expect(c.page.get_by_text("agent planner-7")).to_be_visible()
    c.shot("file")
    c.page.get_by_role("link", name="Edit", exact=True).click()
    box = c.page.get_by_label("Content")
    box.fill("# Facts\nAPI limit: 100 req/s\n")
    c.page.get_by_role("button", name="Save").click()
    expect(c.page.get_by_text("Saved: version")).to_be_visible()
    expect(c.page.locator("table.code")).to_contain_text("100 req/s")
    # The agent's mount sees the correction.
    wait_for("the edit in the mount",
             lambda: read(os.path.join(kb, "facts.md")) == "# Facts\nAPI limit: 100 req/s\n")
    log = world.ctl_json("log", "--store", "kb", "--limit", "1")
    assert log[0]["agent"] == "console" and log[0]["user"], log[0]


def test_a_mount_write_while_the_form_is_open_warns_and_is_merged(console):
    world, c, kb = console
    expect = pw.expect
    write(kb, "plan.md", "step 1\nstep 2\n")
    wait_for("the commit", lambda: api_content(world, "plan.md") == "step 1\nstep 2\n")
    c.go("/console/s/kb/edit?path=plan.md")
    c.page.get_by_label("Content").fill("step 1 (checked)\nstep 2\n")
    # An agent appends while the form is open: the form warns, live.
    with open(os.path.join(kb, "plan.md"), "a") as f:
        f.write("step 3 by the agent\n")
    expect(c.page.locator("#changed-banner")).to_be_visible(timeout=20000)
    expect(c.page.locator("#changed-detail")).to_contain_text("planner-7")
    c.shot("edit-warning")
    c.expected.append(409)
    c.page.get_by_role("button", name="Save").click()
    expect(c.page.get_by_role("heading", name="changed while you edited it")).to_be_visible()
    expect(c.page.locator("table.diff").first).to_contain_text("step 3 by the agent")
    c.shot("conflict", full=True)
    assert read(os.path.join(kb, "plan.md")) == "step 1\nstep 2\nstep 3 by the agent\n"
    merged = "step 1 (checked)\nstep 2\nstep 3 by the agent\n"
    c.page.locator("textarea#content").fill(merged)
    c.page.get_by_role("button", name="Save merged text").click()
    expect(c.page.get_by_text("Saved: version")).to_be_visible()
    wait_for("the merge in the mount", lambda: read(os.path.join(kb, "plan.md")) == merged)


def test_view_a_diff_of_two_versions(console):
    world, c, kb = console
    expect = pw.expect
    write(kb, "limits.md", "rate: 10\nburst: 5\n")
    wait_for("v1", lambda: api_content(world, "limits.md") == "rate: 10\nburst: 5\n")
    write(kb, "limits.md", "rate: 100\nburst: 5\n")
    wait_for("v2", lambda: api_content(world, "limits.md") == "rate: 100\nburst: 5\n")
    c.go("/console/s/kb/history?path=limits.md")
    expect(c.page.locator("#history tbody tr")).to_have_count(2)
    c.shot("history")
    c.page.get_by_role("button", name="Compare the selected versions").click()
    expect(c.page.locator("table.diff tr.del")).to_contain_text("rate: 10")
    expect(c.page.locator("table.diff tr.ins")).to_contain_text("rate: 100")
    c.shot("diff")


def test_roll_back_a_session_from_its_preview(world, browser):
    url, _ = world.serve()
    good = os.path.join(world.mount("good", "curator", "s-good", "kb"), "kb")
    bad = os.path.join(world.mount("bad", "scraper", "poison-1", "kb"), "kb")
    with open(os.path.join(good, "facts.md"), "w") as f:
        f.write("The sky is blue.\n")
    wait_for("the good write", lambda: api_content(world, "facts.md") == "The sky is blue.\n")
    # The other mount learns of the new file from the change feed first.
    wait_for("the file in the other mount", lambda: read(os.path.join(bad, "facts.md")))
    with open(os.path.join(bad, "facts.md"), "w") as f:
        f.write("The sky is green.\n")
    with open(os.path.join(bad, "spam.md"), "w") as f:
        f.write("buy now\n")
    wait_for("the bad writes", lambda: api_content(world, "spam.md") == "buy now\n")
    c = Console(browser, world, url)
    expect = pw.expect
    try:
        c.go("/console/log")
        c.shot("log")
        c.page.get_by_role("link", name="poison-1").first.click()
        expect(c.page.get_by_role("heading", name="Session poison-1")).to_be_visible()
        expect(c.page.get_by_text("Preview (nothing changed yet)")).to_be_visible()
        expect(c.page.locator("table.diff").first).to_contain_text("green")
        c.shot("session", full=True)
        assert api_content(world, "facts.md") == "The sky is green.\n"
        c.page.get_by_role("button", name="Roll back this session").click()
        expect(c.page.get_by_text("Done: every change of the session was undone")).to_be_visible()
        wait_for("the rollback in a mount",
                 lambda: read(os.path.join(good, "facts.md")) == "The sky is blue.\n")
        wait_for("spam gone", lambda: read(os.path.join(good, "spam.md")) is None)
        c.clean()
    finally:
        c.close()


def test_redact_a_version_behind_a_typed_confirmation(console):
    world, c, kb = console
    expect = pw.expect
    write(kb, "creds.md", "token=sk-live-123456\n")
    wait_for("v1", lambda: api_content(world, "creds.md") == "token=sk-live-123456\n")
    write(kb, "creds.md", "token=(rotated)\n")
    wait_for("v2", lambda: api_content(world, "creds.md") == "token=(rotated)\n")
    c.go("/console/s/kb/history?path=creds.md")
    c.page.get_by_role("link", name="Redact…").last.click()
    version = c.page.locator("input[name=version]").get_attribute("value")
    c.expected.append(400)
    c.page.get_by_label("Type").fill("wrong")
    c.page.get_by_role("button", name="Redact for good").click()
    expect(c.page.get_by_text("the confirmation did not match")).to_be_visible()
    c.page.go_back()
    c.page.get_by_label("Type").fill(version)
    c.shot("redact")
    c.page.get_by_role("button", name="Redact for good").click()
    expect(c.page.get_by_text(f"Redacted version {version}")).to_be_visible()
    expect(c.page.locator("tr.tomb")).to_have_count(1)
    expect(c.page.locator("tr.tomb")).to_contain_text("redacted")
    r = world.ctl("cat", "kb/creds.md", "--version", version, check=False)
    assert r.returncode != 0


def test_a_live_update_arrives_without_a_reload(console):
    world, c, kb = console
    expect = pw.expect
    c.go("/console/s/kb")
    expect(c.page.locator("#live-status")).to_have_text("Live", timeout=20000)
    before = c.page.evaluate("window.performance.getEntriesByType('navigation').length")
    with open(os.path.join(kb, "arrived.md"), "w") as f:
        f.write("new fact\n")
    expect(c.page.get_by_role("link", name="arrived.md")).to_be_visible(timeout=20000)
    # The page was updated in place, not reloaded.
    assert c.page.evaluate("window.performance.getEntriesByType('navigation').length") == before
    assert c.page.evaluate("document.body.hasAttribute('data-live-updated')")


def test_injected_markup_is_text_and_runs_nothing_in_any_view(console):
    world, c, kb = console
    expect = pw.expect
    name = "x\"><img src=x onerror=alert(3)>.md"
    write(kb, "evil.md", f"hello\n{SCRIPT}\n")
    wait_for("v1", lambda: api_content(world, "evil.md") == f"hello\n{SCRIPT}\n")
    write(kb, "evil.md", f"hello\n{SCRIPT}\n{IMG}\n")
    wait_for("v2", lambda: api_content(world, "evil.md") == f"hello\n{SCRIPT}\n{IMG}\n")
    write(kb, name, f"{IMG}\n")
    wait_for("the evil name", lambda: api_content(world, name) == f"{IMG}\n")
    hist = world.ctl_json("history", "kb/evil.md")
    versions = sorted(v["id"] for v in (hist["versions"] if isinstance(hist, dict) else hist))
    views = {
        "file": "/console/s/kb/file?path=evil.md",
        "diff": f"/console/s/kb/diff?path=evil.md&from={versions[0]}&to={versions[1]}",
        "search": "/console/s/kb/search?q=onerror",
        "audit": "/console/log?store=kb",
        "tree": "/console/s/kb",
        "history": "/console/s/kb/history?path=evil.md",
    }
    for view, path in views.items():
        c.go(path)
        # The only script is the console's own; no image was made of the text.
        assert c.page.locator("script").count() == 1, view
        assert c.page.locator("img").count() == 0, view
        text = c.page.locator("main").inner_text()
        if view != "history":
            assert ("<script>" in text) or ("<img src=x" in text), f"{view}: {text[:500]}"
        if view == "search":
            expect(c.page.locator("mark").first).to_have_text("onerror")
            c.shot("search")
        if view == "audit":
            c.shot("audit-injection")
    c.go("/console/s/kb/file?path=evil.md")
    # The text is in text nodes of the cells, not elements.
    cells = c.page.evaluate(
        "Array.from(document.querySelectorAll('td.tx')).map(td => "
        "[td.textContent, td.children.length])")
    assert [SCRIPT, 0] in cells and [IMG, 0] in cells, cells
    c.clean()


def test_review_and_admin_pages(console):
    world, c, kb = console
    expect = pw.expect
    write(kb, "drift.md", "v1\n")
    wait_for("v1", lambda: api_content(world, "drift.md") == "v1\n")
    c.go("/console/s/kb/review")
    expect(c.page.get_by_text("have not reviewed this store yet")).to_be_visible()
    c.page.get_by_role("button", name="Mark reviewed").click()
    expect(c.page.get_by_text("Nothing changed since your last review")).to_be_visible()
    write(kb, "drift.md", "v2 drifted\n")
    wait_for("v2", lambda: api_content(world, "drift.md") == "v2 drifted\n")
    c.go("/console/s/kb/review")
    expect(c.page.get_by_role("link", name="since your review")).to_be_visible()
    c.shot("review")
    c.go("/console/admin")
    c.page.get_by_label("Name", exact=True).fill("ci-bot")
    c.page.get_by_label("Role").select_option("writer")
    c.page.get_by_role("button", name="Create key").click()
    secret = c.page.locator("#secret").input_value()
    assert secret.startswith("memfs_")
    c.go("/console/admin")
    expect(c.page.get_by_role("cell", name="ci-bot").first).to_be_visible()
    c.shot("admin")


def test_narrow_window_and_keyboard(console):
    world, c, kb = console
    expect = pw.expect
    c.page.set_viewport_size({"width": 420, "height": 800})
    c.go("/console/stores")
    # The skip link is the first stop and moves focus to the content.
    c.page.keyboard.press("Tab")
    expect(c.page.get_by_role("link", name="Skip to content")).to_be_focused()
    c.page.keyboard.press("Enter")
    assert c.page.evaluate("document.activeElement.id") == "main"
    # Nothing is wider than the window but scrollable tables.
    assert c.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    c.shot("stores-narrow")


def test_review_an_untrusted_sessions_draft_and_merge_part_of_it(world, browser):
    """The store's drafts rule sends agent untrusted-1 to a draft of its
    session; a person reviews the draft's diff in the console, merges one of
    its two files, and the store's history shows who wrote and who merged."""
    world.ctl("store", "set", "kb", "drafts.agents=untrusted-*")
    url, _ = world.serve()
    shared = os.path.join(world.mount("trusted", "curator", "s-curator", "kb"), "kb")
    write(shared, "facts.md", "The sky is blue.\nWater is wet.\n")
    wait_for("the shared write", lambda: api_content(world, "facts.md"))
    untrusted = os.path.join(world.mount("untrusted", "untrusted-1", "sess-u1", "kb"), "kb")
    wait_for("the draft sees the store",
             lambda: read(os.path.join(untrusted, "facts.md")) == "The sky is blue.\nWater is wet.\n")
    with open(os.path.join(untrusted, "facts.md"), "a") as f:
        f.write("Grass is green.\n")
    write(untrusted, "spam.md", "buy now " + SCRIPT + "\n")
    # The agent sees its writes; the shared store does not have them.
    assert read(os.path.join(untrusted, "spam.md")).startswith("buy now")
    assert api_content(world, "spam.md") is None
    assert read(os.path.join(shared, "spam.md")) is None
    drafts = world.ctl_json("draft", "list", "kb")
    assert [d["for_session"] for d in drafts] == ["sess-u1"], drafts
    name = drafts[0]["name"]

    c = Console(browser, world, url)
    expect = pw.expect
    try:
        c.go("/console/s/kb")
        c.page.get_by_role("link", name="Drafts", exact=True).click()
        expect(c.page.get_by_role("heading", name="Drafts of kb")).to_be_visible()
        c.page.get_by_role("link", name=name).click()
        expect(c.page.get_by_role("heading", name=f"Draft {name}")).to_be_visible()
        expect(c.page.locator("table.diff").first).to_contain_text("Grass is green.")
        # The agent's markup is text.
        expect(c.page.locator("body")).to_contain_text("buy now <script>")
        c.shot("draft", full=True)
        # Merge only facts.md: untick spam.md, preview, then apply.
        c.page.get_by_role("checkbox", name="spam.md").uncheck()
        c.page.get_by_role("button", name="Preview the merge").click()
        expect(c.page.get_by_role("heading", name="Merge preview")).to_be_visible()
        assert api_content(world, "facts.md") == "The sky is blue.\nWater is wet.\n"
        c.shot("draft-merge-preview", full=True)
        c.page.get_by_role("button", name="Apply this merge").click()
        expect(c.page.get_by_role("heading", name="Merged")).to_be_visible()
        wait_for("the merge in the shared mount",
                 lambda: read(os.path.join(shared, "facts.md"))
                 == "The sky is blue.\nWater is wet.\nGrass is green.\n")
        assert read(os.path.join(shared, "spam.md")) is None
        # The store's history: who wrote (in the draft) and who merged.
        c.page.get_by_role("link", name="The store's history").click()
        row = c.page.locator("tr", has_text="draft-merge")
        expect(row).to_contain_text("merged draft " + name)
        expect(row).to_contain_text("untrusted-1")
        expect(row).to_contain_text("user root")
        write_row = c.page.locator("tr", has=c.page.get_by_role("link", name="facts.md")).first
        expect(write_row).to_contain_text("user root")
        c.shot("draft-merged-log", full=True)
        # The unmerged file is still in the draft, for later.
        left = world.ctl_json("draft", "diff", name)["draft_changes"]
        assert [x["path"] for x in left] == ["spam.md"], left
        c.clean()
    finally:
        c.close()
