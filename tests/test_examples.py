import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_feature_pipeline_example_runs(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "feature_pipeline.py"), "--rows", "5000", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "reloaded pipeline transforms identically: True" in out.stdout
    assert "streamed rows: 10000" in out.stdout


def test_demo_runs_and_reloads_identically(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "recstack",
            "demo",
            "--rows",
            "5000",
            "--users",
            "200",
            "--items",
            "500",
            "--out",
            str(tmp_path / "pipe"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "identical batch = True" in out.stdout
    assert (tmp_path / "pipe" / "pipeline.json").is_file()


def test_ranking_example_runs_and_exports(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "ranking_deepfm.py"),
            "--rows",
            "20000",
            "--epochs",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "reproduces eager predictions: True" in out.stdout
    assert (tmp_path / "deepfm.pt").is_file() and (tmp_path / "deepfm-best.pt").is_file()
