"""Print the README's Markdown tables from result JSON files (and the speed targets from a bench file).

    python benchmarks/tables.py docs/eval/passkey.json docs/eval/bench.json ...
"""

import json
import sys

from longdoc.eval.report import markdown, targets_markdown


def main(paths):
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        print(f"<!-- {path} -->")
        print(markdown(data))
        print(targets_markdown(data))
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
