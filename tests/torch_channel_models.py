"""PyTorch models for the channel-pruning tests: each holds one coupling the pass must handle
(or refuse) — residual adds, depthwise convs, concat, flatten -> Linear, attention heads, a bare
parameter, a LayerNorm over pruned neurons. Recipes name them as `torch_channel_models.py:fn`."""

from __future__ import annotations

import numpy as np


def coupled_net(concat_into_flatten: bool = False):
    """Conv-BN-ReLU stem, a residual block, a depthwise conv, two branches concatenated into a
    1x1 conv, then flatten -> Linear -> classifier (3x16x16 input, 10 classes). With
    `concat_into_flatten` the concatenation goes straight into flatten -> Linear, which
    Torch-Pruning mis-slices (the verification must stop it)."""
    import torch
    from torch import nn

    def conv_bn(cin: int, cout: int, groups: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, groups=groups, bias=False), nn.BatchNorm2d(cout)
        )

    class Coupled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = conv_bn(3, 16)
            self.block1 = conv_bn(16, 16)
            self.block2 = conv_bn(16, 16)
            self.depthwise = conv_bn(16, 16, groups=16)
            self.left = nn.Conv2d(16, 8, 1)
            self.right = nn.Conv2d(16, 8, 1)
            self.merge = nn.Conv2d(16, 16, 1)
            self.pool = nn.AdaptiveAvgPool2d(2)
            self.fc = nn.Linear(16 * 2 * 2, 32)
            self.head = nn.Linear(32, 10)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            x = torch.relu(x + self.block2(torch.relu(self.block1(x))))
            x = torch.relu(self.depthwise(x))
            x = torch.cat([self.left(x), self.right(x)], dim=1)
            if not concat_into_flatten:
                x = self.merge(x)
            x = self.pool(torch.relu(x)).flatten(1)
            return self.head(torch.relu(self.fc(x)))

    torch.manual_seed(0)
    model = Coupled()
    with torch.no_grad():  # non-trivial BN statistics, so masking must handle shifts
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def concat_flatten_net():
    return coupled_net(concat_into_flatten=True)


def bare_parameter_net():
    """A learned per-channel scale held as a bare nn.Parameter between two convs."""
    import torch
    from torch import nn

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
            self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 8).reshape(1, 8, 1, 1))
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
            self.head = nn.Linear(8, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x)) * self.scale
            return self.head(torch.relu(self.conv2(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    return Scaled().eval()


def shuffle_net():
    """A ShuffleNet channel shuffle (view, transpose, reshape) between two convs: Torch-Pruning
    maps the first conv's channels to the second's inputs as if nothing moved them, so the cut
    model runs but computes something else (the verification must catch it)."""
    import torch
    from torch import nn

    class Shuffled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
            self.conv2 = nn.Conv2d(16, 16, 1)
            self.head = nn.Linear(16, 10)

        def forward(self, x):
            x = torch.relu(self.conv1(x))
            b, c, h, w = x.shape
            x = x.view(b, 4, c // 4, h, w).transpose(1, 2).reshape(b, c, h, w)
            return self.head(torch.relu(self.conv2(x)).mean(dim=(2, 3)))

    torch.manual_seed(0)
    return Shuffled().eval()


def tiny_gpt2():
    """A 2-layer GPT-2 (width 64, 4 heads; random weights) returning next-token logits: its
    layers are transformers `Conv1D`s and its Q/K/V come from one fused projection."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            return self.model(input_ids=input_ids, use_cache=False).logits

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=200, n_positions=64, n_embd=64, n_layer=2, n_head=4)
    return Logits(GPT2LMHeadModel(config)).eval()


def layernorm_mlp():
    """Linear -> LayerNorm -> Linear: removing neurons would change the norm's statistics,
    which no masking reproduces, so that group stays whole."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 32),
        nn.LayerNorm(32),
        nn.ReLU(),
        nn.Linear(32, 16),
        nn.ReLU(),
        nn.Linear(16, 2),
    ).eval()


def dead_channel_net():
    """Two convs where conv1's channel 0 has the largest weights but never fires (its bias
    keeps it below zero, so ReLU outputs 0): magnitude keeps it, activation removes it."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )
    with torch.no_grad():
        model[0].weight[0] *= 10
        model[0].bias[0] = -1000.0
        model[2].weight[:, 0] *= 10
    return model.eval()


def tiny_bert():
    """A 2-layer BERT encoder (hidden 64, 4 heads, FFN 128; random weights) returning its last
    hidden state."""
    import torch
    from transformers import BertConfig, BertModel

    class Hidden(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=200,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    return Hidden(BertModel(config)).eval()


def tokens() -> dict:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 200, (24, 16)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[:, 12:] = 0
    return {"train": [ids[:16], mask[:16]], "val": [ids[16:], mask[16:]]}


def token_ids() -> dict:
    ids = np.random.default_rng(0).integers(1, 200, (24, 16)).astype(np.int64)
    return {"train": ids[:16], "val": ids[16:]}


def labelled_images() -> dict:
    """3x16x16 images whose class is the brightest of ten patches: learnable in a few epochs."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (384, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 384)
    for i, label in enumerate(y):
        row, col = divmod(int(label), 4)
        x[i, :, row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] += 1.0
    return {"train": (x[:320], y[:320]), "val": (x[320:], y[320:])}
