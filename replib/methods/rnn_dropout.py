"""Dropout in recurrent nets: variational (Gal & Ghahramani 2016), naive (Zaremba et al. 2014), on the memory
cell (RNNDrop, Moon et al. 2015) and on the cell's update only (Semeniuta et al. 2016).

Gal & Ghahramani (2016), "A Theoretically Grounded Application of Dropout in Recurrent
Neural Networks", NIPS 2016 (arXiv 1512.05287); Zaremba, Sutskever, Vinyals (2014),
"Recurrent Neural Network Regularization", arXiv 1409.2329; Moon, Choi, Lee & Song (2015),
"RNNDrop: A Novel Dropout for RNNs in ASR", ASRU 2015; Semeniuta, Severyn & Barth (2016),
"Recurrent Dropout without Memory Loss", COLING 2016 (arXiv 1603.05118).

:class:`VariationalLSTM` is a multi-layer LSTM language model with dropout in four places:
the embedding (whole word types), each layer's input, each layer's recurrent state h
(inside the recurrence) and the last layer's output. ``mode`` says how masks are drawn:

- ``variational``: **one mask per sequence**, reused at every time step, for each of the
  four places. The recurrent mask multiplies h_{t-1} before it enters the gates, at every
  step. With ``per_gate=True`` each of the four gates gets its own input and recurrent
  masks (the paper's "untied" parameterisation); otherwise one mask is shared by the
  gates ("tied", the paper's main results).
- ``naive``: a fresh mask **at every time step**, on the non-recurrent connections only
  (each layer's input and the output), as in Zaremba et al.; the recurrent state and the
  embedding are not dropped, and asking for it is an error.
- ``rnndrop``: the non-recurrent connections as ``naive``, and the **memory cell** dropped with
  one mask per sequence, fixed across time steps (Moon et al.):
  ``c_t = m * (f_t c_{t-1} + i_t g_t)`` with ``m`` of rate ``p_recurrent``. A dropped cell is
  erased at every step.
- ``semeniuta``: the non-recurrent connections as ``naive``, and only the cell's **update
  candidate** dropped (Semeniuta et al.): ``c_t = f_t c_{t-1} + i_t (m_t * g_t)``, so the memory
  itself is never erased; ``m_t`` is drawn afresh at every step, or once per sequence with
  ``semeniuta_per_sequence=True`` (the paper studies both).
- ``none``: no dropout.

A "sequence" is what one forward call sees: a (T, B) segment of B sequences in
truncated back-propagation through time; masks are drawn per call and per sequence b.
Embedding dropout drops a word *type* for a sequence: every occurrence of that word in
the segment gets a zero embedding. Kept values are scaled by 1 / (1 - p) (inverted
dropout), so evaluation uses the network as it is (weight averaging); for MC averaging
pass the model to :func:`replib.methods.mc_predict`.

The recurrence is one fused (B, H) x (H, 4H) product per step for all gates (a batched
product when masks are per gate) plus the element-wise cell update; the input
projections of all time steps are one product before the loop. No per-gate Python.
(TorchScript, which could remove the loop's interpreter overhead, is deprecated in the
torch release this project pins.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._validate import check_choice, check_positive_int, check_probability
from ._stochastic import StochasticLayer

MODES = ("variational", "naive", "rnndrop", "semeniuta", "none")
PER_STEP_INPUTS = ("naive", "rnndrop", "semeniuta")  # modes whose non-recurrent masks are drawn at every step


def _bernoulli_scaled(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """A mask of 0 and 1/(1-p) with keep probability 1 - p."""
    keep = 1.0 - p
    return (torch.rand(shape, device=like.device) < keep).to(like.dtype).mul_(1.0 / keep)


def _lstm_recurrence(
    xproj: torch.Tensor, h: torch.Tensor, c: torch.Tensor, weight_hh: torch.Tensor, mask_h: torch.Tensor | None,
    mask_c: torch.Tensor | None = None, mask_g: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the recurrence over ``xproj`` ``(T, B, 4H)`` (input projections incl. biases).

    ``weight_hh`` ``(4H, H)``; ``mask_h`` None, ``(B, H)`` (shared by the gates) or
    ``(B, 4, H)`` (one per gate), applied to h before every recurrent product; ``mask_c``
    None or ``(B, H)``, applied to the new cell state at every step (RNNDrop); ``mask_g``
    None, ``(B, H)`` or ``(T, B, H)``, applied to the update candidate g (Semeniuta et al.),
    the same at every step or one per step.
    Returns the outputs ``(T, B, H)`` and the final ``h``, ``c`` ``(B, H)``.
    """
    hidden = h.shape[1]
    outputs: list[torch.Tensor] = []
    per_gate = mask_h is not None and mask_h.dim() == 3
    w = weight_hh.view(4, hidden, hidden).transpose(1, 2) if per_gate else weight_hh.t()  # (4, H_in, H_out) or (H, 4H)
    for t in range(xproj.shape[0]):
        if mask_h is None:
            rec = h.mm(w)
        elif not per_gate:
            rec = (h * mask_h).mm(w)
        else:
            rec = torch.bmm((h.unsqueeze(1) * mask_h).transpose(0, 1), w).transpose(0, 1).reshape(h.shape[0], 4 * hidden)
        gates = xproj[t] + rec
        i, f, g, o = gates.chunk(4, 1)
        candidate = torch.tanh(g)
        if mask_g is not None:
            candidate = candidate * (mask_g if mask_g.dim() == 2 else mask_g[t])
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * candidate
        if mask_c is not None:
            c = c * mask_c
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs), h, c


class VariationalLSTM(StochasticLayer):
    """LSTM language model with variational, naive, RNNDrop, Semeniuta or no dropout; see the module docstring.

    Args:
        vocab_size: number of word types V.
        hidden_size: H, also the embedding size.
        num_layers: stacked LSTM layers.
        mode: ``variational``, ``naive``, ``rnndrop``, ``semeniuta`` or ``none``.
        p_embedding: drop probability of a word type per sequence (``variational`` only).
        p_input: drop probability of each layer's input units.
        p_recurrent: drop probability of the recurrent state units (``variational``), of the memory cells
            (``rnndrop``) or of the update candidates (``semeniuta``).
        p_output: drop probability of the last layer's output units.
        per_gate: ``variational`` only: separate masks for each gate ("untied").
        tie_weights: share the embedding and softmax weights.
        semeniuta_per_sequence: ``semeniuta`` only: one candidate mask per sequence instead of one per step.

    Shapes: ``forward(tokens (T, B) int64, state=None)`` returns logits ``(T, B, V)`` and the
    state ``(h, c)``, each ``(num_layers, B, H)``, to carry into the next segment.
    """

    def __init__(
        self,
        vocab_size: int,
        hidden_size: int,
        num_layers: int = 2,
        *,
        mode: str = "variational",
        p_embedding: float = 0.0,
        p_input: float = 0.0,
        p_recurrent: float = 0.0,
        p_output: float = 0.0,
        per_gate: bool = False,
        tie_weights: bool = False,
        semeniuta_per_sequence: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            check_positive_int(value, name)
        self.mode = check_choice(mode, MODES, "mode")
        self.p_embedding = check_probability(p_embedding, "p_embedding")
        self.p_input = check_probability(p_input, "p_input")
        self.p_recurrent = check_probability(p_recurrent, "p_recurrent")
        self.p_output = check_probability(p_output, "p_output")
        if mode != "variational" and (self.p_embedding > 0 or per_gate):
            raise ValueError(
                f"mode={mode!r} drops no embedding and has no per-gate masks: p_embedding ({p_embedding!r}) must be 0 "
                "and per_gate False; use mode='variational' for those"
            )
        if mode in ("naive", "none") and self.p_recurrent > 0:
            raise ValueError(
                f"mode={mode!r} drops nothing inside the recurrence: p_recurrent ({p_recurrent!r}) must be 0; "
                "use mode='variational', 'rnndrop' or 'semeniuta' for that"
            )
        if semeniuta_per_sequence and mode != "semeniuta":
            raise ValueError(f"semeniuta_per_sequence=True is a choice of mode='semeniuta', not of mode={mode!r}")
        self.semeniuta_per_sequence = bool(semeniuta_per_sequence)
        if max(self.p_embedding, self.p_input, self.p_recurrent, self.p_output) >= 1.0:
            raise ValueError(
                "drop probabilities must be < 1: a layer that drops everything cannot learn; got "
                f"p_embedding={p_embedding!r}, p_input={p_input!r}, p_recurrent={p_recurrent!r}, p_output={p_output!r}"
            )
        self.per_gate = bool(per_gate)
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.weight_ih = nn.ParameterList(nn.Parameter(torch.empty(4 * hidden_size, hidden_size)) for _ in range(num_layers))
        self.weight_hh = nn.ParameterList(nn.Parameter(torch.empty(4 * hidden_size, hidden_size)) for _ in range(num_layers))
        self.bias = nn.ParameterList(nn.Parameter(torch.zeros(4 * hidden_size)) for _ in range(num_layers))
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self.reset_parameters()

    def reset_parameters(self, scale: float | None = None) -> None:
        """Uniform(-scale, scale) for every weight (Zaremba et al.: 0.05 medium, 0.04 large); default 1/sqrt(H)."""
        scale = 1.0 / math.sqrt(self.hidden_size) if scale is None else scale
        for p in self.parameters():
            nn.init.uniform_(p, -scale, scale)
        for b in self.bias:
            nn.init.zeros_(b)

    def init_state(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(self.num_layers, batch_size, self.hidden_size, device=self.embedding.weight.device)
        return zeros, zeros.clone()

    def _drop(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Non-recurrent dropout of ``x`` ``(T, B, D)``: per sequence (variational) or per step (naive)."""
        if not self.training or p == 0.0 or self.mode == "none":
            return x
        shape = (1, x.shape[1], x.shape[2]) if self.mode not in PER_STEP_INPUTS else tuple(x.shape)
        return x * _bernoulli_scaled(shape, p, x)

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(tokens)  # (T, B, H)
        if not self.training or self.p_embedding == 0.0 or self.mode != "variational":
            return emb
        word_mask = _bernoulli_scaled((tokens.shape[1], self.embedding.num_embeddings), self.p_embedding, emb)
        return emb * word_mask.gather(1, tokens.t()).t().unsqueeze(2)  # the same word type, the same mask

    def _input_projection(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """``(T, B, H)`` -> ``(T, B, 4H)``: W_ih x + b for every step, with the layer's input dropout."""
        w, b = self.weight_ih[layer], self.bias[layer]
        dropping = self.training and self.p_input > 0 and self.mode != "none"
        if not (dropping and self.per_gate):
            return torch.addmm(b, self._drop(x, self.p_input).flatten(0, 1), w.t()).view(x.shape[0], x.shape[1], -1)
        masks = _bernoulli_scaled((4, 1, x.shape[1], x.shape[2]), self.p_input, x)  # (gate, 1, B, H)
        h = self.hidden_size
        per_gate = [torch.matmul(x * masks[g], w[g * h:(g + 1) * h].t()) for g in range(4)]
        return torch.cat(per_gate, 2) + b

    def _recurrent_mask(self, batch: int, like: torch.Tensor) -> torch.Tensor | None:
        if not self.training or self.mode != "variational" or self.p_recurrent == 0.0:
            return None
        shape = (batch, 4, self.hidden_size) if self.per_gate else (batch, self.hidden_size)
        return _bernoulli_scaled(shape, self.p_recurrent, like)

    def _cell_masks(self, steps: int, batch: int, like: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(mask_c, mask_g)`` for one layer's recurrence: RNNDrop's per-sequence cell mask ``(B, H)``, or
        Semeniuta's candidate mask, ``(T, B, H)`` per step or ``(B, H)`` per sequence."""
        if not self.training or self.p_recurrent == 0.0 or self.mode not in ("rnndrop", "semeniuta"):
            return None, None
        if self.mode == "rnndrop":
            return _bernoulli_scaled((batch, self.hidden_size), self.p_recurrent, like), None
        shape = (batch, self.hidden_size) if self.semeniuta_per_sequence else (steps, batch, self.hidden_size)
        return None, _bernoulli_scaled(shape, self.p_recurrent, like)

    def forward(self, tokens: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        if tokens.dim() != 2 or tokens.dtype != torch.long:
            raise ValueError(f"tokens must be int64 (T, B), got {tokens.dtype} {tuple(tokens.shape)}")
        h0, c0 = state if state is not None else self.init_state(tokens.shape[1])
        x = self._embed(tokens)
        hs, cs = [], []
        for layer in range(self.num_layers):
            xproj = self._input_projection(x, layer)
            x, h, c = _lstm_recurrence(xproj, h0[layer], c0[layer], self.weight_hh[layer],
                                       self._recurrent_mask(tokens.shape[1], x),
                                       *self._cell_masks(tokens.shape[0], tokens.shape[1], x))
            hs.append(h)
            cs.append(c)
        logits = self.decoder(self._drop(x, self.p_output))
        return logits, (torch.stack(hs), torch.stack(cs))

    def extra_repr(self) -> str:
        return (f"mode={self.mode}, layers={self.num_layers}, hidden={self.hidden_size}, p_embedding={self.p_embedding}, "
                f"p_input={self.p_input}, p_recurrent={self.p_recurrent}, p_output={self.p_output}, "
                f"per_gate={self.per_gate}" + (", semeniuta_per_sequence=True" if self.semeniuta_per_sequence else ""))


class RNNDropLSTM(VariationalLSTM):
    """:class:`VariationalLSTM` with ``mode="rnndrop"`` (Moon et al. 2015): the memory cell dropped with one mask
    per sequence (``p_cell``), the non-recurrent connections per step (``p_input``, ``p_output``)."""

    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int = 2, *, p_cell: float = 0.0,
                 p_input: float = 0.0, p_output: float = 0.0, tie_weights: bool = False) -> None:
        super().__init__(vocab_size, hidden_size, num_layers, mode="rnndrop", p_input=p_input, p_recurrent=p_cell,
                         p_output=p_output, tie_weights=tie_weights)


class SemeniutaLSTM(VariationalLSTM):
    """:class:`VariationalLSTM` with ``mode="semeniuta"`` (Semeniuta et al. 2016): only the cell's update candidate
    dropped (``p_update``), per step or, with ``per_sequence=True``, per sequence; the memory is never erased."""

    def __init__(self, vocab_size: int, hidden_size: int, num_layers: int = 2, *, p_update: float = 0.0,
                 per_sequence: bool = False, p_input: float = 0.0, p_output: float = 0.0,
                 tie_weights: bool = False) -> None:
        super().__init__(vocab_size, hidden_size, num_layers, mode="semeniuta", p_input=p_input, p_recurrent=p_update,
                         p_output=p_output, tie_weights=tie_weights, semeniuta_per_sequence=per_sequence)
