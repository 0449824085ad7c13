import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

VECTORS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "vectors"


def load(name):
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))["tests"]
