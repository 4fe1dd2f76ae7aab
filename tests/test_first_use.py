"""First use: slow kernels compile in a background process while the layers run their torch ops, the switch
to the kernels keeps the numbers, a failed compile leaves the torch path with a warning, and a read-only
install still caches its kernels (in the user's cache directory)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recstack.errors import RecstackWarning
from recstack.kernels import registry, warm

SRC = Path(__file__).resolve().parents[1] / "src"

BACKGROUND_SCRIPT = textwrap.dedent(
    """
    import json
    import torch
    from recstack.kernels import attention, cin, registry
    from recstack.nn import CIN, InteractingLayer

    torch.manual_seed(0)
    layer = InteractingLayer(8, head_num=2)
    x = torch.randn(40, 3, 8)
    cin_layer = CIN(3, layer_size=(4, 4), split_half=False)
    e = torch.randn(40, 3, 8)

    def outputs():
        with torch.no_grad():
            return layer(x), cin_layer(e)

    before_ready = (attention.ready(3, 8, 2), cin.ready())
    with registry.disabled("attention", "cin"):
        reference = outputs()
    torch_path = outputs()  # while compiling: the torch ops
    finished = registry.wait_compiled(timeout=900)
    after_ready = (attention.ready(3, 8, 2), cin.ready())
    kernel_path = outputs()
    print(json.dumps({
        "before": before_ready,
        "finished": finished,
        "after": after_ready,
        "torch_same": all(torch.equal(a, b) for a, b in zip(torch_path, reference)),
        "kernel_diff": max(float((a - b).abs().max()) for a, b in zip(kernel_path, reference)),
        "compiled": sorted(str(k) for k in registry._COMPILED),
    }))
    """
)


def _run(script: str, env: dict, prefix: tuple = ()) -> dict:
    import json

    cmd = [*prefix, sys.executable, "-c", script]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_background_compile_switches_to_the_kernels(tmp_path):
    env = dict(os.environ, RECSTACK_COMPILE="background", NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    out = _run(BACKGROUND_SCRIPT, env)
    assert out["before"] == [False, False]  # an empty cache: the first forward never waits for a compile
    assert out["torch_same"]
    assert out["finished"]
    assert out["after"] == [True, True]
    assert out["kernel_diff"] < 1e-4
    assert any("attention" in k for k in out["compiled"]) and "cin" in out["compiled"]


def test_failed_background_compile_warns_and_keeps_the_torch_path(monkeypatch):
    monkeypatch.setenv(registry.COMPILE_ENV, "background")
    key = ("test-family-that-does-not-exist",)

    def build():
        raise AssertionError("build must not run when the compile failed")

    try:
        assert registry.when_compiled(key, build, "no_such_family", 1) is None
        assert not registry.wait_compiled(timeout=120)
        with pytest.warns(RecstackWarning, match="no_such_family.*exit status 2"):
            assert registry.when_compiled(key, build, "no_such_family", 1) is None
        assert registry.when_compiled(key, build, "no_such_family", 1) is None  # warned once
    finally:
        registry._WARMUPS.pop(key, None)


def test_wait_mode_compiles_in_the_caller(monkeypatch):
    monkeypatch.setenv(registry.COMPILE_ENV, "wait")
    key = ("test-wait-mode",)
    try:
        assert registry.when_compiled(key, lambda: "built", "unused") == "built"
        assert key not in registry._WARMUPS
    finally:
        registry._COMPILED.pop(key, None)


def test_bad_compile_mode_is_named(monkeypatch):
    monkeypatch.setenv(registry.COMPILE_ENV, "later")
    with pytest.raises(ValueError, match="RECSTACK_COMPILE='later'"):
        registry.compile_in_background()


@pytest.mark.parametrize("argv", [[], ["nope"], ["attention", "3", "8"], ["attention", "a", "b", "c"], ["cin", "1"]])
def test_warm_entry_point_rejects_bad_arguments(argv, capsys):
    assert warm.main(argv) == 2
    assert "recstack.kernels.warm" in capsys.readouterr().err


READ_ONLY_SCRIPT = textwrap.dedent(
    """
    import json
    import torch
    from recstack.kernels import cin, registry

    gz, x0, xk = torch.randn(16, 3, 4), torch.randn(16, 3), torch.randn(16, 4)
    cin.outer_grads(gz, x0, xk, torch.empty(16, 4), torch.empty(16, 3))
    stats = registry._COMPILED["cin_grads"].stats
    print(json.dumps({"hits": len(stats.cache_hits), "misses": len(stats.cache_misses), "file": cin.__file__}))
    """
)


def _read_only_prefix(install: Path) -> tuple:
    """A command prefix under which ``install`` cannot be written: file modes for a normal user; for root
    (who writes anywhere) a read-only bind mount in a private mount namespace, or a skip where that fails."""
    for path in [install, *install.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    if os.geteuid() != 0:
        return ()
    prefix = ("unshare", "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(install))
    probe = subprocess.run([*prefix, "sh", "-c", f'touch "{install}/probe"'], capture_output=True)
    if probe.returncode == 0 or (install / "probe").exists():
        pytest.skip("cannot make a read-only directory for root here (no mount namespace)")
    if b"Read-only file system" not in probe.stderr:
        pytest.skip(f"cannot make a read-only directory for root here: {probe.stderr.decode()[-200:]}")
    return prefix


def test_read_only_install_caches_in_the_user_cache_directory(tmp_path):
    install = tmp_path / "site-packages"
    shutil.copytree(SRC / "recstack", install / "recstack", ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "RECSTACK_"))}
    env.update(PYTHONPATH=str(install), HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    try:
        prefix = _read_only_prefix(install)
        first = _run(READ_ONLY_SCRIPT, env, prefix)
        second = _run(READ_ONLY_SCRIPT, env, prefix)
    finally:
        for path in [install, *install.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert first["file"].startswith(str(install))
    assert first["misses"] >= 1 and second["hits"] >= 1 and second["misses"] == 0
    assert not list(install.rglob("*.nbi"))  # nothing written into the package
    assert list((home / ".cache" / "numba").rglob("*.nbi"))
