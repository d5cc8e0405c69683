"""Run the boundcalc CLI from a checkout: python cli.py derive specs/lowrank_mlp.yaml"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from boundcalc.cli import app  # noqa: E402

if __name__ == "__main__":
    app()
