"""The PyTorch twin of SwiftViT's flow transformer (DiT blocks with adaLN-Zero, a
cross-attention to caption tokens as in PixArt-alpha), written from the papers' equations
with torch modules, in float64: outputs, every parameter gradient and the losses of 10
torch.optim.AdamW steps on the flow-matching loss, for fixed random weights and inputs.

Run from the repo root: python Tests/Reference/flow_transformer.py
Writes Tests/ViTGeneratorTests/Golden/flow-debug.safetensors (parameters under SwiftViT's
keys, inputs, outputs, gradients, losses).
"""
import math

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from dataclasses import dataclass

OUT = "Tests/ViTGeneratorTests/Golden/flow-debug.safetensors"


@dataclass
class Config:
    """FlowTransformerConfig's fields; the defaults are the debug state's sizes."""
    image: int = 8
    patch: int = 4
    channels: int = 3
    dim: int = 16
    depth: int = 2
    heads: int = 2
    hidden: int = 32
    context: int = 6
    frequencies: int = 8


def timestep_embedding(t, dim, max_period=10000.0):
    """DiT's sinusoidal features: [cos(t f_i), sin(t f_i)], f_i = max_period^(-i / half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=t.dtype) / half)
    args = t[:, None] * freqs[None]
    out = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(out, (0, dim % 2))


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def heads(x, h):
    b, n, c = x.shape
    return x.reshape(b, n, h, c // h).transpose(1, 2)  # [B, H, N, hd]


def attention(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    return scores.softmax(-1) @ v


class Block(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = self.dim = cfg.dim
        self.heads = cfg.heads
        self.adaLN_modulation = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(d, 6 * d))
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.proj = torch.nn.Linear(d, d)
        self.cross_norm = torch.nn.LayerNorm(d, eps=1e-6)
        self.cross_q = torch.nn.Linear(d, d)
        self.cross_kv = torch.nn.Linear(cfg.context, 2 * d)
        self.cross_proj = torch.nn.Linear(d, d)
        self.fc1 = torch.nn.Linear(d, cfg.hidden)
        self.fc2 = torch.nn.Linear(cfg.hidden, d)

    def forward(self, x, c, context, mask):
        d, nh = self.dim, self.heads
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        b, n, _ = x.shape
        h = modulate(F.layer_norm(x, (d,), eps=1e-6), shift1, scale1)
        q, k, v = self.qkv(h).reshape(b, n, 3, nh, d // nh).permute(2, 0, 3, 1, 4)
        y = attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + gate1.unsqueeze(1) * self.proj(y)
        h = self.cross_norm(x)
        k, v = self.cross_kv(context).split(d, dim=-1)
        y = attention(heads(self.cross_q(h), nh), heads(k, nh), heads(v, nh), mask.unsqueeze(1))
        x = x + self.cross_proj(y.transpose(1, 2).reshape(b, n, d))
        h = modulate(F.layer_norm(x, (d,), eps=1e-6), shift2, scale2)
        return x + gate2.unsqueeze(1) * self.fc2(F.gelu(self.fc1(h), approximate="tanh"))


class FlowTransformer(torch.nn.Module):
    def __init__(self, cfg=Config()):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.x_embedder = torch.nn.Conv2d(cfg.channels, d, cfg.patch, stride=cfg.patch)
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, (cfg.image // cfg.patch) ** 2, d))
        self.t_mlp = torch.nn.Sequential(torch.nn.Linear(cfg.frequencies, d), torch.nn.SiLU(), torch.nn.Linear(d, d))
        self.blocks = torch.nn.ModuleList([Block(cfg) for _ in range(cfg.depth)])
        self.final_modulation = torch.nn.Sequential(torch.nn.SiLU(), torch.nn.Linear(d, 2 * d))
        self.final_linear = torch.nn.Linear(d, cfg.channels * cfg.patch * cfg.patch)

    def forward(self, images, times, context, mask):
        cfg = self.cfg
        c = self.t_mlp(timestep_embedding(times * 1000, cfg.frequencies))
        x = self.x_embedder(images).flatten(2).transpose(1, 2) + self.pos_embed
        for block in self.blocks:
            x = block(x, c, context, mask)
        shift, scale = self.final_modulation(c).chunk(2, dim=1)
        x = self.final_linear(modulate(F.layer_norm(x, (cfg.dim,), eps=1e-6), shift, scale))
        b, g = x.shape[0], cfg.image // cfg.patch
        x = x.reshape(b, g, g, cfg.channels, cfg.patch, cfg.patch)
        return torch.einsum("bhwcpq->bchpwq", x).reshape(b, cfg.channels, cfg.image, cfg.image)


def swiftvit_keys(model):
    """The twin's parameters under SwiftViT's checkpoint keys (x_embedder as a product)."""
    keys = {
        "x_embedder.weight": model.x_embedder.weight.reshape(model.cfg.dim, -1),
        "x_embedder.bias": model.x_embedder.bias,
        "pos_embed": model.pos_embed,
        "t_embedder.mlp.0.weight": model.t_mlp[0].weight, "t_embedder.mlp.0.bias": model.t_mlp[0].bias,
        "t_embedder.mlp.2.weight": model.t_mlp[2].weight, "t_embedder.mlp.2.bias": model.t_mlp[2].bias,
        "final_layer.adaLN_modulation.linear.weight": model.final_modulation[1].weight,
        "final_layer.adaLN_modulation.linear.bias": model.final_modulation[1].bias,
        "final_layer.linear.weight": model.final_linear.weight, "final_layer.linear.bias": model.final_linear.bias,
    }
    for i, block in enumerate(model.blocks):
        p = f"blocks.{i}."
        for ours, theirs in [("adaLN_modulation.linear", block.adaLN_modulation[1]), ("attn.qkv", block.qkv),
                             ("attn.proj", block.proj), ("cross_norm", block.cross_norm),
                             ("cross_attn.q", block.cross_q), ("cross_attn.kv", block.cross_kv),
                             ("cross_attn.proj", block.cross_proj), ("mlp.fc1", block.fc1), ("mlp.fc2", block.fc2)]:
            keys[p + ours + ".weight"] = theirs.weight
            keys[p + ours + ".bias"] = theirs.bias
    return keys


def main():
    torch.manual_seed(0)
    model = FlowTransformer().double()
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():  # every parameter random: no zero-initialized layer left
            p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    cfg = model.cfg
    images = torch.randn((2, cfg.channels, cfg.image, cfg.image), generator=g, dtype=torch.float64)
    times = torch.tensor([0.3, 0.85], dtype=torch.float64)
    context = torch.randn((2, 3, cfg.context), generator=g, dtype=torch.float64)
    mask = torch.tensor([[[0.0, 0.0, 0.0]], [[0.0, 0.0, -1e9]]], dtype=torch.float64)  # [B, 1, M]
    upstream = torch.randn((2, cfg.channels, cfg.image, cfg.image), generator=g, dtype=torch.float64)
    target = torch.randn((2, cfg.channels, cfg.image, cfg.image), generator=g, dtype=torch.float64)

    keys = swiftvit_keys(model)
    tensors = {f"param.{k}": v.detach().clone() for k, v in keys.items()}
    out = model(images, times, context, mask)
    (out * upstream).sum().backward()
    # x_embedder.weight is a reshaped view: its gradient is the convolution weight's, reshaped.
    grads = {f"grad.{k}": v.grad for k, v in keys.items() if k != "x_embedder.weight"}
    grads["grad.x_embedder.weight"] = model.x_embedder.weight.grad.reshape(cfg.dim, -1)
    tensors.update({k: v.detach().clone() for k, v in grads.items()})
    tensors.update({"images": images, "times": times, "context": context, "mask": mask, "upstream": upstream,
                    "target": target, "outputs": out.detach()})

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = F.mse_loss(model(images, times, context, mask), target)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    tensors["adamw_losses"] = torch.tensor(losses, dtype=torch.float64)
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, OUT)
    print(losses)


if __name__ == "__main__":
    main()
