"""The MMoE's training loss: the ranking task's softmax over each user's candidates plus
`aux_weight` x each other task's binary cross-entropy where it has a label."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def multitask_loss(
    logits: torch.Tensor,
    cand: torch.Tensor,
    labels: dict[str, torch.Tensor],
    tasks: list[str],
    aux_weight: float,
) -> torch.Tensor:
    """`logits` (B, C, tasks); `cand` (B, C) candidate indices, -1 = none; `labels[task]`
    (B, C): next_item bool (the next item's column), the others 0/1 or a soft label in [0, 1],
    NaN = no label (rating: only the next item has one). A user whose next item the first stage
    missed teaches the ranking task nothing. The result needs no gradient when no task has a
    label in the batch."""
    valid = cand >= 0
    is_next = labels[tasks[0]]
    has_target = is_next.any(dim=1)
    loss = torch.zeros((), device=logits.device)
    if has_target.any():
        main = logits[..., 0].masked_fill(~valid, float("-inf"))[has_target]
        loss = F.cross_entropy(main, is_next[has_target].float().argmax(dim=1))
    for j, task in enumerate(tasks[1:], start=1):
        label = labels[task].float()
        has = valid & ~torch.isnan(label)
        if has.any():
            bce = F.binary_cross_entropy_with_logits(logits[..., j][has], label[has])
            loss = loss + aux_weight * bce
    return loss
