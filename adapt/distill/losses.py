"""The distillation losses of PairDistill (section 4 of the paper), one function each.

Student scores `s` are [batch, n] MaxSim scores over each query's training passages; `valid`
marks real passages (a query may have fewer than n). The zero-shot objective is
`L_ZS = lambda_kd * L_KD + lambda_pair * L_pair`. The paper's L_CL needs labelled positives,
which the zero-shot setting has none of; it is not built.
"""

import torch
from torch.nn import functional as F

_MASKED = -1e4  # exp(-1e4) is exactly 0 in float32, and unlike -inf it keeps KL's gradients finite


def kd_loss(
    student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """KL(softmax(teacher / tau) || softmax(student)), averaged over queries.

    >>> s = torch.tensor([[2.0, 1.0, 0.0]]); ok = torch.ones(1, 3, dtype=torch.bool)
    >>> round(kd_loss(s, s, ok).item(), 6)
    0.0
    >>> kd_loss(s, -s, ok).item() > 0
    True
    """
    log_p_student = F.log_softmax(student.masked_fill(~valid, _MASKED), dim=-1)
    log_p_teacher = F.log_softmax((teacher / temperature).masked_fill(~valid, _MASKED), dim=-1)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="none")
    return kl.masked_fill(~valid, 0.0).sum(dim=-1).mean()


def pair_loss(
    student: torch.Tensor, pairs: torch.Tensor, target: torch.Tensor, pair_valid: torch.Tensor
) -> torch.Tensor:
    """Sum over each query's pairs of KL([p, 1-p] || [sigma(s_i - s_j), 1 - sigma(s_i - s_j)]),
    averaged over queries. `pairs` is [batch, P, 2] indices into the passages, `target` [batch, P]
    the teacher's P(i > j).

    >>> s = torch.tensor([[3.0, 0.0]]); pairs = torch.tensor([[[0, 1]]])
    >>> ok = torch.ones(1, 1, dtype=torch.bool)
    >>> agree = pair_loss(s, pairs, torch.tensor([[0.95]]), ok).item()
    >>> disagree = pair_loss(s, pairs, torch.tensor([[0.05]]), ok).item()
    >>> agree < 0.01 < disagree
    True
    """
    first = student.gather(1, pairs[..., 0])
    second = student.gather(1, pairs[..., 1])
    margin = first - second
    p = target.clamp(1e-6, 1 - 1e-6)
    kl = p * (p.log() - F.logsigmoid(margin)) + (1 - p) * ((1 - p).log() - F.logsigmoid(-margin))
    return kl.masked_fill(~pair_valid, 0.0).sum(dim=-1).mean()
