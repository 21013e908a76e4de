"""The README's HTTP API example works as written: it runs against a real
`memfs serve` with a key made by `memfsctl apikey create` as the README shows,
and the memory it writes is in the mounted store and in `memfsctl log`,
attributed to the key."""

import io
import os
import re
import contextlib

from conftest import ROOT


def readme_block(heading, lang):
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text[text.index(heading):]
    return re.search(r"```" + lang + r"\n(.*?)```", section, re.S).group(1)


def test_the_readme_sdk_example(world):
    sh = readme_block("### The HTTP API", "sh")
    m = re.search(r"memfsctl (apikey create .*?)\)", sh)
    key = world.ctl(*m.group(1).split()).stdout.strip()
    url, _ = world.serve()
    code = readme_block("### The HTTP API", "python").replace("http://127.0.0.1:8420", url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"KEY": key})
    lines = out.getvalue().splitlines()
    assert lines[0] == "API: 100 req/s", lines
    assert "created" in lines[2] and "api_actor" in lines[2], lines
    mp = world.mount("m", "reader-agent", "s1", "team-kb")
    with open(os.path.join(mp, "team-kb", "facts", "limits.md")) as f:
        assert f.read() == "API: 100 req/s\n"
    log = world.ctl_json("log", "--store", "team-kb", "--op", "create")
    assert [(e["path"], e["agent"], e["session"].startswith("apikey_")) for e in log] == [
        ("facts/limits.md", "platform", True)]
