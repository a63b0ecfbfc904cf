"""A pure-PyTorch reference for timm's VisionTransformer (timm/models/vision_transformer.py).

timm itself cannot be installed in medtune's reference environment (it imports torchvision, and
the local package index only has a CUDA torchvision that cannot load against the CPU torch), so
this module re-states the equations of timm's VisionTransformer with timm's parameter names, so
that a state dict saved from it has exactly the keys of a timm / MAE checkpoint:

  patch_embed.proj (Conv2d, kernel = stride = patch), cls_token (1, 1, D), pos_embed (1, N + 1, D)
  [norm_pre], blocks.i.{norm1, attn.qkv, attn.proj, [ls1.gamma], norm2, mlp.fc1, mlp.fc2, [ls2.gamma]}
  norm (token pooling) or fc_norm (global-average pooling, as MAE fine-tuning uses), head

Forward, as timm computes it (eval mode; LayerNorm eps 1e-6, exact GELU):
  x = patch_embed(img).flatten(2).transpose(1, 2)
  x = cat([cls_token, x]) + pos_embed            (no_embed_class: x + pos_embed, then cat)
  x = norm_pre(x)
  for each block: x = x + ls1(attn(norm1(x)));  x = x + ls2(mlp(norm2(x)))
      attn: qkv(x).reshape(B, N, 3, heads, hd).permute(2, 0, 3, 1, 4) -> sdpa -> proj
  x = norm(x)
  pooled = x[:, 0] ('token') or x[:, 1:].mean(1) ('avg');  pooled = fc_norm(pooled);  head(pooled)
Written from reading timm's source; no code is copied.
"""
import torch
from torch import nn
import torch.nn.functional as F


class LayerScale(nn.Module):
    def __init__(self, dim, init_values):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, num_heads, qkv_bias):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, qkv_bias, init_values):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, in_chans, dim, bias=True):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size, bias=bias)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, global_pool='token', embed_dim=768,
                 depth=12, num_heads=12, mlp_ratio=4.0, qkv_bias=True, init_values=None, class_token=True,
                 no_embed_class=False, pre_norm=False, fc_norm=None):
        super().__init__()
        use_fc_norm = global_pool in ('avg', 'avgmax', 'max') if fc_norm is None else fc_norm
        self.global_pool = global_pool
        self.no_embed_class = no_embed_class
        self.num_prefix_tokens = 1 if class_token else 0
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, bias=not pre_norm)
        num_patches = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim)) if class_token else None
        embed_len = num_patches if no_embed_class else num_patches + self.num_prefix_tokens
        self.pos_embed = nn.Parameter(torch.randn(1, embed_len, embed_dim) * 0.02)
        self.norm_pre = nn.LayerNorm(embed_dim, eps=1e-6) if pre_norm else nn.Identity()
        self.blocks = nn.Sequential(*[Block(embed_dim, num_heads, mlp_ratio, qkv_bias, init_values) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6) if not use_fc_norm else nn.Identity()
        self.fc_norm = nn.LayerNorm(embed_dim, eps=1e-6) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x):
        x = self.patch_embed(x)
        if self.no_embed_class:
            x = x + self.pos_embed
            if self.cls_token is not None:
                x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        else:
            if self.cls_token is not None:
                x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
            x = x + self.pos_embed
        x = self.norm_pre(x)
        x = self.blocks(x)
        return self.norm(x)

    def pool(self, x):
        if self.global_pool == 'token':
            return x[:, 0]
        x = x[:, self.num_prefix_tokens:]
        if self.global_pool == 'avg':
            return x.mean(dim=1)
        if self.global_pool == 'max':
            return x.amax(dim=1)
        return 0.5 * (x.amax(dim=1) + x.mean(dim=1))

    def forward_head(self, x, pre_logits=False):
        x = self.fc_norm(self.pool(x))
        return x if pre_logits else self.head(x)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
