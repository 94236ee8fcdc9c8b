"""Chat templates of model families that restrict system turns (the rules of shared/regressions/c14), and a copy
of a model folder that carries one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TEMPLATES = {
    # Gemma / Mistral v0.1 style: no system role at all
    "nosys": "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('This model has no system role') }}"
             "{% endif %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
             "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    # Qwen style: one system turn, first only
    "onesys": "{% for m in messages %}{% if m['role'] == 'system' and not loop.first %}"
              "{{ raise_exception('System message must be at the beginning.') }}{% endif %}"
              "{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}"
              "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
}


def restricted_copy(src, dst, kind: str) -> Path:
    """A copy of the model folder `src` at `dst` whose chat template is TEMPLATES[kind]."""
    dst = Path(dst)
    shutil.copytree(src, dst)
    (dst / "chat_template.jinja").write_text(TEMPLATES[kind])
    cfg = dst / "tokenizer_config.json"
    data = json.loads(cfg.read_text())
    data.pop("chat_template", None)
    cfg.write_text(json.dumps(data))
    return dst
