"""The peer: the PyTorch reimplementation's training step, timed like ours.

The public PyTorch reimplementation of Selfie trains a PreAct ResNet-50 cut
after its third stage (P) with a 3-layer `torch.nn.TransformerEncoder` of
width 1024 (32 heads, feed-forward 640, dropout 0.1, GELU, a final layer
norm) as the attention pooling network, on 8x8 patches of 32x32 images,
4 of 16 patches to predict, SGD with Nesterov momentum. This script builds
that architecture (written here from its description, not copied) and
times its whole training step the way `benchmarks/step.py` times ours: a
batch already in memory, warm-up steps, then the median images/s over
timed windows. Run both on the same machine, one after the other, so that
they do not share the cores:

    python benchmarks/step.py --batch-sizes 32 128 --no-flops
    python benchmarks/pytorch_reference.py --batch-sizes 32 128

It needs PyTorch (`pip install torch`), which keras_selfie does not depend
on; run it from an environment that has it.
"""

import argparse
import platform
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck (BN-ReLU-conv x3), as in PreAct ResNets."""

    expansion = 4

    def __init__(self, in_channels, filters, stride):
        super().__init__()
        out_channels = self.expansion * filters
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, filters, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters)
        self.conv2 = nn.Conv2d(
            filters, filters, 3, stride=stride, padding=1, bias=False
        )
        self.bn3 = nn.BatchNorm2d(filters)
        self.conv3 = nn.Conv2d(filters, out_channels, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride=stride, bias=False
            )

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + shortcut


class PatchNetwork(nn.Module):
    """PreAct ResNet-50 stages 1-3 (3x3 stem) + global average pooling."""

    def __init__(self, width=1.0):
        super().__init__()
        channels = round(64 * width)
        self.stem = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        blocks = []
        for filters, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2)):
            filters = round(filters * width)
            for i in range(count):
                blocks.append(
                    PreActBottleneck(channels, filters, stride if i == 0 else 1)
                )
                channels = PreActBottleneck.expansion * filters
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = channels

    def forward(self, patches):
        return self.blocks(self.stem(patches)).mean(dim=(2, 3))


class SelfieStep(nn.Module):
    """P over all patches, attention pooling, distractor cross-entropy."""

    def __init__(self, patch_size, num_patches, num_targets, width, layers,
                 heads, intermediate_dim):
        super().__init__()
        self.patch_size = patch_size
        self.num_targets = num_targets
        self.network = PatchNetwork(width)
        dim = self.network.feature_dim
        layer = nn.TransformerEncoderLayer(
            dim, heads, intermediate_dim, dropout=0.1, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(
            layer, layers, nn.LayerNorm(dim), enable_nested_tensor=False
        )
        self.position_embedding = nn.Embedding(num_patches, dim)

    def forward(self, images):
        batch, channels, _, _ = images.shape
        p = self.patch_size
        patches = (
            images.unfold(2, p, p).unfold(3, p, p).permute(0, 2, 3, 1, 4, 5)
        )
        hidden = self.network(patches.reshape(-1, channels, p, p))
        num_patches = hidden.shape[0] // batch
        hidden = hidden.reshape(batch, num_patches, -1)
        scores = torch.rand(batch, num_patches)
        order = scores.argsort(dim=1)
        context = order[:, : num_patches - self.num_targets]
        target = order[:, num_patches - self.num_targets :]
        rows = torch.arange(batch)[:, None]
        context_features = hidden[rows, context]
        target_features = hidden[rows, target]
        # Sequence-first, a zero token in front whose output is u.
        tokens = torch.cat(
            [hidden.new_zeros(batch, 1, hidden.shape[2]), context_features], 1
        ).transpose(0, 1)
        u = self.encoder(tokens)[0]
        queries = u[:, None, :] + self.position_embedding(target)
        logits = torch.bmm(queries, target_features.transpose(1, 2))
        labels = torch.arange(self.num_targets).repeat(batch)
        return F.cross_entropy(logits.reshape(-1, self.num_targets), labels)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32])
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--patch-size", type=int, default=8)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--num-heads", type=int, default=32)
    parser.add_argument("--intermediate-dim", type=int, default=640)
    parser.add_argument("--steps", type=int, default=3,
                        help="training steps per timed window (default: 3)")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: PyTorch's)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    num_patches = (args.image_size // args.patch_size) ** 2
    model = SelfieStep(
        args.patch_size, num_patches, num_patches // 4, args.width,
        args.num_layers, args.num_heads, args.intermediate_dim,
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
        weight_decay=1e-4,
    )
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"Python {platform.python_version()}; "
          f"{sum(p.numel() for p in model.parameters()):,} parameters")

    def step(images):
        optimizer.zero_grad(set_to_none=True)
        loss = model(images)
        loss.backward()
        optimizer.step()
        return loss.item()

    model.train()
    for batch_size in args.batch_sizes:
        images = torch.rand(batch_size, 3, args.image_size, args.image_size)
        for _ in range(args.warmup):
            step(images)
        rates = []
        for _ in range(args.windows):
            start = time.perf_counter()
            for _ in range(args.steps):
                step(images)
            rates.append(args.steps * batch_size
                         / (time.perf_counter() - start))
        print(f"Batch {batch_size}: PyTorch step "
              f"{statistics.median(rates):,.1f} images/s (windows: "
              f"{', '.join(f'{r:,.1f}' for r in rates)})", flush=True)


if __name__ == "__main__":
    main()
