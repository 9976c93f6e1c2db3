"""The canonical operations: every spelling of one computation, as data.

Code writes one operation many ways -- ``F.softmax(x, dim=-1)``, ``torch.softmax(x, -1)``,
``x.softmax(-1)``, ``self.attend(x)`` with ``self.attend = nn.Softmax(dim=-1)``,
``nn.Softmax(dim=-1)(x)`` -- and a rule should say the computation once.  Each entry below lists
the spellings of one operation; :mod:`adopter.structure.canon` turns any of them into one graph
node with the entry's name, so that rules, pre-filters and synthesis ask one table instead of
enumerating spellings (in the manner of TorchFix's YAML tables).  Adding a spelling is adding it
to its entry here.

Keys of an entry (all optional but ``signature``):

``functions``       fully qualified functions (``torch.softmax``); the entry's name is one too
``methods``         Tensor methods (``x.softmax(...)``: the receiver is the first input)
``inplace``         in-place methods (``x.masked_fill_(...)`` as a statement redefines ``x``)
``operators``       Python operators (``@``, ``+``)
``attributes``      attributes that compute it (``x.mT``), with the keyword values they imply
``modules``         module classes computing it when called, with the names of their constructor's
                    positional parameters: the constructor's arguments are merged into the call
                    (``nn.Softmax(dim=-1)`` called on ``x`` is ``softmax(x, dim=-1)``)
``signature``       parameter names of the function form in order; after the first ``inputs``
                    (tensors, kept positional) every argument is matched by keyword, so
                    ``softmax(x, -1)`` and ``softmax(x, dim=-1)`` are one node
``method_signature`` parameter names of the method form after the receiver (default: the
                    function's, less its first)
``renames``         per function, parameter names it spells differently (``torch.dropout``'s
                    ``train``)
``inputs``          leading tensor inputs (default 1)
``commutative``     the two inputs may be swapped
``dims``            parameters naming one dimension: ``x.dim() - 1``, ``x.ndim - 1`` and
                    ``len(x.shape) - 1`` of the first input are ``-1``
``unordered``       parameters whose values form a set (``transpose(x, -1, -2)`` is
                    ``transpose(x, -2, -1)``): sorted
``activation_keys`` keys of activation tables (``ACT2FN["gelu"]``, ``get_activation("gelu")``)
                    that build it
``runtime``         an activation (or a loss): a layer whose activation is chosen at run time
                    (``ACT2FN[config.hidden_act]``) *may* compute it, and matches; a rule naming it
                    must guard at run time (its kernel calls the original activation otherwise)
                    or only report
"""

from __future__ import annotations

# The canonical softmax: every spelling of softmax (``F.softmax``, ``x.softmax``, an ``nn.Softmax``
# attribute) becomes a node with this name, and the readings that look for the softmax ask for it.
SOFTMAX = "torch.nn.functional.softmax"

OPS: dict[str, dict] = {
    SOFTMAX: {
        "functions": ["torch.softmax", "torch.special.softmax", "torch.Tensor.softmax"],
        "methods": ["softmax"],
        "modules": {"torch.nn.Softmax": ["dim"]},
        "signature": ["input", "dim", "_stacklevel", "dtype"],
        "method_signature": ["dim", "dtype"],
        "dims": ["dim"],
    },
    # log_softmax then nll_loss over the same class axis is a cross-entropy (ADP015 reads the
    # pair; nothing else does)
    "torch.nn.functional.log_softmax": {
        "functions": ["torch.log_softmax", "torch.special.log_softmax", "torch.Tensor.log_softmax"],
        "methods": ["log_softmax"],
        "modules": {"torch.nn.LogSoftmax": ["dim"]},
        "signature": ["input", "dim", "_stacklevel", "dtype"],
        "method_signature": ["dim", "dtype"],
        "dims": ["dim"],
    },
    "torch.nn.functional.nll_loss": {
        "modules": {"torch.nn.NLLLoss": ["weight", "size_average", "ignore_index", "reduce", "reduction"]},
        "signature": ["input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction"],
        "inputs": 2,
    },
    "torch.matmul": {
        "functions": ["torch.bmm", "torch.Tensor.matmul", "torch.Tensor.bmm"],
        "methods": ["matmul", "bmm"],
        "operators": ["@"],
        "signature": ["input", "other"],
        "inputs": 2,
        # torch.einsum / einops.einsum with an equation that means a @ b or a @ b^T are this
        # operation too (b^T as a transpose node): see canon.einsum.
    },
    "torch.transpose": {
        "functions": ["torch.swapaxes", "torch.swapdims", "torch.Tensor.transpose"],
        "methods": ["transpose", "swapaxes", "swapdims"],
        "attributes": {"mT": {"dim0": -2, "dim1": -1}},
        "signature": ["input", "dim0", "dim1"],
        "unordered": ["dim0", "dim1"],
        # x.permute(...) / torch.permute / einops.rearrange that only swap the last two axes
        # are this operation too: see canon.permutation.
    },
    "torch.add": {
        "functions": ["torch.Tensor.add"],
        "methods": ["add"],
        "inplace": ["add_"],
        "operators": ["+"],
        "signature": ["input", "other", "alpha"],
        "inputs": 2,
        "commutative": True,
    },
    "torch.sub": {
        "functions": ["torch.subtract", "torch.Tensor.sub"],
        "methods": ["sub", "subtract"],
        "inplace": ["sub_"],
        "operators": ["-"],
        "signature": ["input", "other", "alpha"],
        "inputs": 2,
    },
    "torch.mul": {
        "functions": ["torch.multiply", "torch.Tensor.mul"],
        "methods": ["mul", "multiply"],
        "inplace": ["mul_"],
        "operators": ["*"],
        "signature": ["input", "other"],
        "inputs": 2,
        "commutative": True,
    },
    "torch.div": {
        "functions": ["torch.divide", "torch.true_divide", "torch.Tensor.div"],
        "methods": ["div", "divide", "true_divide"],
        "inplace": ["div_"],
        "operators": ["/"],
        "signature": ["input", "other", "rounding_mode"],
        "inputs": 2,
    },
    "torch.mean": {
        "functions": ["torch.Tensor.mean"],
        "methods": ["mean"],
        "signature": ["input", "dim", "keepdim", "dtype"],
        "dims": ["dim"],
    },
    "torch.pow": {
        "functions": ["torch.Tensor.pow"],
        "methods": ["pow"],
        "operators": ["**"],
        "signature": ["input", "exponent"],
        "inputs": 2,  # x ** 2 and x.pow(2) alike: the exponent stays positional
    },
    "torch.square": {
        "functions": ["torch.Tensor.square"],
        "methods": ["square"],
        "signature": ["input"],
        # x ** 2 as another operation: see EQUIVALENT_STEPS
    },
    "torch.sqrt": {
        "functions": ["torch.Tensor.sqrt"],
        "methods": ["sqrt"],
        "signature": ["input"],
    },
    "torch.rsqrt": {
        "functions": ["torch.Tensor.rsqrt"],
        "methods": ["rsqrt"],
        "signature": ["input"],
    },
    "canon.rotate_half": {
        # torch.cat((-x2, x1), dim=-1) where x1, x2 are the first and second halves of x's last
        # axis (slices at x.shape[-1] // 2, or x.chunk(2, dim=-1)): the rotate-half of rotary
        # position embeddings, wherever it is written (see graph._rotate_half). No function
        # computes it; the name is the table's own.
        "signature": ["input"],
    },
    "canon.rope_halves": {
        # torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1) with x1, x2 the halves of x's last
        # axis: rotary position embedding written per half (x * cos + rotate_half(x) * sin with
        # cos and sin the half tables repeated; see graph._rope_halves). No function computes it;
        # the name is the table's own.
        "inputs": 3,
        "signature": ["input", "cos", "sin"],
    },
    "canon.softmax_shift": {
        # x - x.amax(dim=-1, keepdim=True) (maybe detached; or x.max(-1, keepdim=True).values):
        # the numerically stable softmax written by hand, the same softmax without it (see
        # canon.subtracts_row_max). No function computes it; the name is the table's own.
        # Also a floor at x's own dtype minimum (torch.max(x, torch.tensor(torch.finfo(x.dtype).min)),
        # x.clamp(min=...); canon.floors_at_dtype_min): no finite value moves, the softmax is the
        # same but on a row every key of which is at the minimum (fully masked).
        "signature": ["input"],
    },
    "canon.rows": {
        # x[..., :-1, :], x[:, 1:, :]: slices of the leading axes, the last axis whole (see
        # canon.selects_rows): the positions a shifted loss reads. No function computes it;
        # the name is the table's own.
        "signature": ["input"],
    },
    "canon.members": {
        # torch.stack([m(x) for m in self.heads], dim=d): every member's output stacked on a new
        # axis d >= 0 (graph._member_stack; the member's call is its own step before it). No
        # function computes it; the name is the table's own.
        "signature": ["input"],
    },
    "canon.first": {
        # outputs[0] of outputs = self.attn(x) (or self.attn(x)[0]): the first output of a module
        # the class binds (graph: _Ctx.called); of a module returning ``(out,) + rest`` that is
        # ``out``. No function computes it; the name is the table's own.
        "signature": ["input"],
    },
    "canon.member": {
        # stacked[:, k] of such a stack on axis 1 (stacked[k] on axis 0), maybe after slices that
        # keep the stack axis: the k-th member's output (graph._member_pick). No function
        # computes it; the name is the table's own.
        "signature": ["input"],
    },
    "canon.split_member": {
        # split[:, :, i] of split = x.reshape(*x.shape[:k], n, V) (graph._split_last_axis): the
        # i-th block of V of x's last axis, one member of a Linear to n * V. No function computes
        # it; the name is the table's own.
        "signature": ["input"],
    },
    "canon.lead2": {
        # x[:, 1:], x[1:]: slices of the first two axes at most (see canon.slices_two_leading),
        # which keep the last axis of a 3-D value whole: the positions a loss over (batch,
        # positions, classes) reads. No function computes it; the name is the table's own.
        "signature": ["input"],
    },
    "canon.class_axis_second": {
        # einops.rearrange(x, "b l n d -> b d (l n)"): axes moved and merged only, x's last axis
        # alone at position 1 (see canon.rearrange_class_axis_second), where a cross-entropy
        # takes its classes. No function computes it; the name is the table's own.
        "signature": ["input"],
    },
    "canon.head_scale": {
        # p * w after a softmax, w of size 1 on its last two axes (a learned per-head scalar,
        # ``self.head_scale.view(1, h, 1, 1)``; see structure/headscale.py): the probabilities
        # scaled by a factor constant over queries and keys, which folds into the values
        # ((p * w) @ v = p @ (w * v)). No function computes it; the name is the table's own.
        "inputs": 2,
        "signature": ["input", "other"],
    },
    "canon.tied_logits": {
        # h @ self.embed.weight.T, F.linear(h, self.embed.weight): hidden states times the
        # transposed weight of an nn.Embedding the class binds, i.e. logits over the
        # embedding's entries (a head tied to the token embedding; see graph._embedding_weight).
        # No function computes it; the name is the table's own.
        "signature": ["input"],
    },
    "torch.nn.functional.cross_entropy": {
        "modules": {"torch.nn.CrossEntropyLoss": ["weight", "size_average", "ignore_index", "reduce", "reduction",
                                                  "label_smoothing"]},
        "signature": ["input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction",
                      "label_smoothing"],
        "inputs": 2,
        # a loss module chosen by a setting (``self.loss_fct = BPRLoss()`` if ``loss_type ==
        # "BPR"``, ``nn.CrossEntropyLoss()`` if "CE") may compute it: ADP015 reports the
        # configuration that does (it is report-only: nothing to guard)
        "runtime": True,
    },
    "torch.nn.functional.linear": {
        # x W^T + b; weight and bias are tensors as much as the input is, so all three stay
        # positional (``F.linear(input=x, weight=w, bias=b)`` reads as ``F.linear(x, w, b)``)
        "signature": ["input", "weight", "bias"],
        "inputs": 3,
    },
    "torch.chunk": {
        "functions": ["torch.Tensor.chunk"],
        "methods": ["chunk"],
        "signature": ["input", "chunks", "dim"],
        "dims": ["dim"],
    },
    "torch.Tensor.masked_fill": {
        "functions": ["torch.masked_fill"],
        "methods": ["masked_fill"],
        "inplace": ["masked_fill_"],
        "signature": ["input", "mask", "value"],
        # torch.where(mask, x, fill) with a large negative fill is this operation too: see
        # canon.where_fill.
    },
    "torch.Tensor.to": {
        # A dtype conversion; only its dtype= is read (a device move is not this operation).
        "methods": ["to", "type"],
        "signature": ["input", "dtype"],
        # x.float() / .half() / .double() / .bfloat16() and x.type_as(y): see canon.CASTS.
    },
    "torch.nn.functional.dropout": {
        "functions": ["torch.dropout", "torch.Tensor.dropout"],
        "modules": {"torch.nn.Dropout": ["p", "inplace"]},
        "signature": ["input", "p", "training", "inplace"],
        "renames": {"torch.dropout": {"train": "training"}},
    },
    "torch.nn.functional.gelu": {
        # transformers.activations.gelu is a GELUActivation instance (exact GELU), called as a
        # function in RoBERTa-style LM heads (gelu_new there is the tanh approximation: not this)
        "functions": ["torch._C._nn.gelu", "transformers.activations.gelu"],
        "modules": {
            "torch.nn.GELU": ["approximate"],
            "transformers.activations.GELUActivation": [],
            "transformers.activations.NewGELUActivation": [],
            "transformers.activations.FastGELUActivation": [],
            "transformers.activations.AccurateGELUActivation": [],
            "transformers.activations.PytorchGELUTanh": [],
            "transformers.activations.GELUTanh": [],
            "transformers.activations.ClippedGELUActivation": ["min", "max"],
        },
        "signature": ["input", "approximate"],
        "activation_keys": ["gelu", "gelu_new", "gelu_fast", "gelu_python", "gelu_pytorch_tanh", "gelu_accurate",
                            "gelu_10"],
        "runtime": True,
    },
    "torch.nn.functional.silu": {
        "modules": {"torch.nn.SiLU": ["inplace"], "transformers.activations.SiLUActivation": []},
        "signature": ["input", "inplace"],
        "activation_keys": ["silu", "swish"],
        "runtime": True,
    },
    "torch.nn.functional.relu": {
        "functions": ["torch.relu", "torch.Tensor.relu"],
        "methods": ["relu"],
        "modules": {"torch.nn.ReLU": ["inplace"]},
        "signature": ["input", "inplace"],
        "activation_keys": ["relu"],
        "runtime": True,
    },
}

# Computations written with other operations (or another number of steps): each entry is a
# canonical fragment in the rule language and the fragments that compute the same values.  A
# rule's pattern containing one fragment also matches code written as any other
# (adopter.equivalents; values the fragment computes before its last step must not be read
# elsewhere in the pattern, since the other spelling does not compute them).
EQUIVALENT_STEPS: list[tuple[str, list[str]]] = [
    # the square: x ** 2, x.pow(2), torch.square(x), x.square(), x * x
    ("$y = torch.pow($x, 2)", ["$y = torch.square($x)", "$y = $x * $x"]),
    # the reciprocal square root: rsqrt(v), 1 / sqrt(v)
    ("$y = torch.rsqrt($v)", ["$y = 1 / torch.sqrt($v)"]),
    # scaling by a reciprocal square root: x * rsqrt(v) is x / sqrt(v)
    ("$r = torch.rsqrt($v)\n$y = $x * $r", ["$r = torch.sqrt($v)\n$y = $x / $r"]),
]

# Tensor methods that convert to a fixed dtype: x.float() is x.to(dtype=torch.float32).
CASTS: dict[str, str] = {
    "float": "torch.float32",
    "double": "torch.float64",
    "half": "torch.float16",
    "bfloat16": "torch.bfloat16",
}

# A tensor's metadata, read as an attribute or a method (``x.shape``, ``x.size(-1)``): what it
# is, not its values.
TENSOR_METADATA = frozenset({"shape", "ndim", "dtype", "device", "dim", "size", "is_cuda", "numel",
                             "requires_grad"})

# Spellings of one dtype (torch.float is torch.float32).
DTYPE_ALIASES: dict[str, str] = {
    "torch.float": "torch.float32",
    "torch.double": "torch.float64",
    "torch.half": "torch.float16",
}

# Activation tables and factories whose key picks the activation: ACT2FN["gelu"] is a GELU,
# ACT2FN[config.hidden_act] may be any activation (chosen at run time).
ACTIVATION_TABLES = ["ACT2FN", "ACT2CLS"]
ACTIVATION_FACTORIES = ["get_activation"]
# The type of a layer attribute bound to a required ``__init__`` parameter of a class the file
# never builds (bindings._required_elsewhere): what other files pass, chosen at run time; called
# as a layer it may be any activation (canon.Table.layer_ops)
RUNTIME_PARAM = "?passed"
