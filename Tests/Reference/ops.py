"""Golden files for the tensor core: each op computed by PyTorch in float64 on float32
inputs, saved as float32 safetensors (inputs and outputs).

Run from the repo root:  python Tests/Reference/ops.py
Writes Tests/ViTTensorTests/Golden/ops.safetensors. Tensor names are CASE.NAME; the
Swift test recomputes each CASE from its inputs and compares element by element.
"""
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
tensors = {}


def rand(*shape, low=-2.0, high=2.0):
    # float32 values, so that both sides start from exactly the same inputs
    return (torch.rand(*shape, dtype=torch.float64) * (high - low) + low).float().double()


def case(name, **items):
    for key, value in items.items():
        tensors[f"{name}.{key}"] = value.float().contiguous()


a, b = rand(2, 3, 4), rand(3, 1)
case("add_broadcast", a=a, b=b, out=a + b)
a, b = rand(4, 1, 5), rand(3, 1)
case("sub_broadcast", a=a, b=b, out=a - b)
a, b = rand(2, 3, 4), rand(4)
case("mul_broadcast", a=a, b=b, out=a * b)
a, b = rand(5, 6), rand(5, 6, low=0.5, high=3.0)
case("div", a=a, b=b, out=a / b)
x = rand(3, 7)
case("exp", x=x, out=torch.exp(x))
x = rand(3, 7, low=0.01, high=5)
case("log", x=x, out=torch.log(x), sqrt=torch.sqrt(x))
x = rand(3, 7, low=-4, high=4)
case("tanh", x=x, out=torch.tanh(x))

x = rand(2, 3, 5)
for axis in range(3):
    case(f"reduce{axis}", x=x, sum=x.sum(axis), mean=x.mean(axis), max=x.amax(axis))
x = rand(2, 3, 5, low=-30, high=30)  # large logits: softmax must subtract the maximum
for axis in range(3):
    case(f"softmax{axis}", x=x, out=torch.softmax(x, axis))

x = rand(4, 33, low=-6, high=6)
case("gelu", x=x, erf=torch.nn.functional.gelu(x), tanh=torch.nn.functional.gelu(x, approximate="tanh"))

x = rand(6, 48, low=-3, high=5)
w, bias = rand(48), rand(48)
case("layernorm", x=x, weight=w, bias=bias,
     out=torch.nn.functional.layer_norm(x, (48,), w, bias, eps=1e-5),
     out_eps6=torch.nn.functional.layer_norm(x, (48,), w, bias, eps=1e-6),
     out_plain=torch.nn.functional.layer_norm(x, (48,), None, None, eps=1e-12))

a, b = rand(2, 3, 5, 7), rand(3, 7, 4)
case("matmul_broadcast", a=a, b=b, out=a @ b)
a, b = rand(2, 7, 5), rand(2, 6, 7)
case("matmul_transposed", a=a, b=b, out=a.transpose(-2, -1) @ b.transpose(-2, -1))
a, b = rand(4, 9, 16), rand(10, 16)
case("matmul_linear", a=a, b=b, out=a @ b.T)

x = rand(2, 3, 4, 5)
case("permute", x=x, out=x.permute(2, 0, 3, 1), transpose=x.transpose(1, 3))
case("slice", x=x, out=x[:, 1:3], last=x[..., 2:5])
y = rand(2, 2, 4, 5)
case("concat", x=x, y=y, out=torch.cat([x, y], 1))

save_file(tensors, "Tests/ViTTensorTests/Golden/ops.safetensors")
print(f"{len(tensors)} tensors")
