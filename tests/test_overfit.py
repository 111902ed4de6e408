"""Every matcher × adaption variant of the small model must learn two synthetic images: after a short Adam run
its decoded detections (eval mode, the real decoder and soft-NMS) overlap every ground-truth box with IoU > 0.7."""
import itertools
import pytest
import torch
from torchvision.ops import box_iou
from centripetal.model import CentripetalNet, ModelConfig
from centripetal.matching import MATCHERS
from centripetal.adaption import ADAPTIONS

SIZE, STEPS, LR = 64, 80, 3e-3


def two_images(size=SIZE, seed=0):
    "Two noisy images with 3 and 2 objects of 2 classes: flat rectangles (class 0) and ellipses (class 1)."
    g = torch.Generator().manual_seed(seed)
    s = size / 128
    boxes = [(torch.tensor([[12., 16., 52., 60.], [60., 20., 100., 64.], [30., 76., 90., 116.]]) * s).round(),
             (torch.tensor([[20., 20., 70., 100.], [80., 40., 120., 90.]]) * s).round()]
    labels = [torch.tensor([0, 0, 1]), torch.tensor([1, 0])]
    imgs = 0.1 * torch.randn(2, 3, size, size, generator=g)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for b in range(2):
        for (x1, y1, x2, y2), l in zip(boxes[b].tolist(), labels[b].tolist()):
            colour = torch.rand(3, 1, 1, generator=g) + 0.5
            inside = (xx >= x1) & (xx < x2) & (yy >= y1) & (yy < y2)
            if l == 1:
                cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
                inside &= ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1
            imgs[b] = torch.where(inside, colour, imgs[b])
    return imgs, [{"boxes": bb, "labels": ll} for bb, ll in zip(boxes, labels)]


def best_iou_per_gt(dets, targets, top=10):
    "For every ground-truth box, the best IoU among the top detections of its class."
    out = []
    for d, t in zip(dets, targets):
        boxes, labels = d["boxes"][:top], d["labels"][:top]
        if len(boxes) == 0:
            out.append(torch.zeros(len(t["boxes"]))); continue
        iou = box_iou(t["boxes"], boxes) * (t["labels"][:, None] == labels[None])
        out.append(iou.max(1).values)
    return torch.cat(out)


@pytest.mark.parametrize("matcher,adaption", list(itertools.product(MATCHERS, ADAPTIONS)))
def test_overfit_two_images(matcher, adaption):
    torch.manual_seed(0)
    imgs, targets = two_images()
    cfg = ModelConfig(backbone="small", small_channels=16, num_classes=2, matcher=matcher, adaption=adaption,
                      mask_head=False)
    net = CentripetalNet(cfg)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    for _ in range(STEPS):
        loss = net(imgs, targets)["loss"]
        opt.zero_grad(); loss.backward(); opt.step()
    net.eval()
    ious = best_iou_per_gt(net(imgs), targets)
    assert ious.min() > 0.7, f"{matcher}/{adaption}: best IoU per ground-truth box {ious.tolist()} (final loss {loss.item():.3f})"
