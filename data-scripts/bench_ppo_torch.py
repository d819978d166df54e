#!/usr/bin/env python3
"""PyTorch reference for sslbench's PPO navigation throughput (BENCHMARKS.md).

The same compute per frame as `sslbench nav configs/nav/bench_resnet50.toml`: a frozen
torchvision ResNet-50 (random init) read at one tap from 256x256 frames normalised per step,
then the trained part (protocols.md section 7): 3x3 compress conv to 8 channels + GroupNorm,
4 frames stacked, conv 4x4/2 to 32, FC 1024, FC 512, actor (3) and critic. A rollout stores
each frame's tap features (the compress conv trains, so updates recompute it) and every
step's stack of frame ids; then GAE and epochs x minibatches of the clipped PPO update with
Adam and a gradient-norm clip. Frames come from a fixed pool of random images: environment
stepping is left out (sslbench's built-in environment costs ~0.25 ms per 256x256 frame).

    python3 data-scripts/bench_ppo_torch.py [--tap res3] [--rollout 64] [--updates 2]
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

STAGES = {"res3": "layer2", "res4": "layer3", "res5": "layer4"}
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class Trunk(nn.Module):
    """torchvision's ResNet-50 up to a stage."""

    def __init__(self, tap):
        super().__init__()
        net = torchvision.models.resnet50(weights=None).eval()
        names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        self.body = nn.Sequential(*[getattr(net, n) for n in names[: names.index(STAGES[tap]) + 1]])

    def forward(self, x):
        return self.body(x)


class Policy(nn.Module):
    """Compress + GroupNorm per frame, 4-frame stack, conv, FCs, actor and critic."""

    def __init__(self, channels, side, size=16, stack=4, actions=3):
        super().__init__()
        self.stride = max(side // size, 1)
        self.repeat = max(size // side, 1)
        self.stack = stack
        self.compress = nn.Conv2d(channels, 8, 3, stride=self.stride, padding=1)
        self.norm = nn.GroupNorm(8, 8)
        out = (size - 4) // 2 + 1
        self.conv = nn.Conv2d(8 * stack, 32, 4, stride=2)
        self.fc = nn.Sequential(nn.Linear(32 * out * out, 1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU())
        self.actor = nn.Linear(512, actions)
        self.critic = nn.Linear(512, 1)

    def compressed(self, taps):
        y = self.norm(self.compress(taps))
        if self.repeat > 1:
            y = y.repeat_interleave(self.repeat, 2).repeat_interleave(self.repeat, 3)
        return y

    def forward(self, frames, stacks):
        c = self.compressed(frames)
        b = stacks.shape[0]
        x = c[stacks.reshape(-1)].reshape(b, self.stack * c.shape[1], c.shape[2], c.shape[3])
        x = self.fc(F.relu(self.conv(x)).flatten(1))
        return self.actor(x), self.critic(x).squeeze(-1)


def run(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pool = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(64)]
    trunk = Trunk(args.tap)
    with torch.inference_mode():
        probe = trunk(torch.zeros(1, 3, 256, 256))
    policy = Policy(probe.shape[1], probe.shape[2])
    opt = torch.optim.Adam(policy.parameters(), lr=1e-4, eps=1e-5)
    timings = []
    frame_i = 0
    for update in range(args.updates + 1):
        t_trunk = t_act = 0.0
        t0 = time.perf_counter()
        feats, stacks, actions, logps, values, rewards = [], [], [], [], [], []
        current = None
        for step in range(args.rollout + 1):
            t = time.perf_counter()
            img = torch.from_numpy(pool[frame_i % len(pool)]).permute(2, 0, 1).unsqueeze(0).float() / 255.0
            frame_i += 1
            with torch.inference_mode():
                f = trunk((img - MEAN) / STD)[0]
            feats.append(f.clone())
            t_trunk += time.perf_counter() - t
            t = time.perf_counter()
            idx = len(feats) - 1
            current = [idx] * 4 if current is None else current[1:] + [idx]
            ids = sorted(set(current))
            local = torch.tensor([[ids.index(i) for i in current]])
            with torch.no_grad():
                logits, value = policy(torch.stack([feats[i] for i in ids]), local)
            dist = torch.distributions.Categorical(logits=logits)
            a = dist.sample()
            if step < args.rollout:
                stacks.append(list(current))
                actions.append(int(a))
                logps.append(float(dist.log_prob(a)))
                values.append(float(value))
                rewards.append(-0.025)
            else:
                last = float(value)
            t_act += time.perf_counter() - t
        t = time.perf_counter()
        adv = np.zeros(args.rollout, np.float32)
        run_adv, nxt = 0.0, last
        for i in reversed(range(args.rollout)):
            delta = rewards[i] + 0.99 * nxt - values[i]
            run_adv = delta + 0.99 * 0.95 * run_adv
            adv[i], nxt = run_adv, values[i]
        ret = torch.tensor(adv + np.array(values, np.float32))
        adv_t = torch.tensor((adv - adv.mean()) / (adv.std(ddof=1) + 1e-5))
        old_logp, old_v = torch.tensor(logps), torch.tensor(values)
        act_t = torch.tensor(actions)
        per = args.rollout // args.minibatches
        for _ in range(args.epochs):
            order = torch.randperm(args.rollout)
            for m in range(args.minibatches):
                mb = order[m * per:(m + 1) * per].tolist()
                ids = sorted({i for j in mb for i in stacks[j]})
                pos = {i: k for k, i in enumerate(ids)}
                local = torch.tensor([[pos[i] for i in stacks[j]] for j in mb])
                logits, v = policy(torch.stack([feats[i] for i in ids]), local)
                logp_all = F.log_softmax(logits, -1)
                logp = logp_all.gather(1, act_t[mb].unsqueeze(1)).squeeze(1)
                entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
                ratio = (logp - old_logp[mb]).exp()
                a = adv_t[mb]
                pl = -torch.min(ratio * a, ratio.clamp(0.9, 1.1) * a).mean()
                vc = old_v[mb] + (v - old_v[mb]).clamp(-0.1, 0.1)
                vl = 0.5 * torch.max((v - ret[mb]) ** 2, (vc - ret[mb]) ** 2).mean()
                loss = pl + 1e-3 * vl - 1e-4 * entropy
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
                opt.step()
        t_learn = time.perf_counter() - t
        total = time.perf_counter() - t0
        if update > 0:
            timings.append({"seconds": total, "trunk_s": t_trunk, "act_s": t_act, "learn_s": t_learn,
                            "fps": args.rollout / total})
        print(f"update {update}{' (warm-up)' if update == 0 else ''}: {args.rollout / total:.2f} frames/s "
              f"(trunk {t_trunk:.1f} s, acting {t_act:.1f} s, learning {t_learn:.1f} s)", flush=True)
    fps = float(np.median([t["fps"] for t in timings]))
    result = {"torch": torch.__version__, "threads": args.threads, "tap": args.tap, "rollout": args.rollout,
              "epochs": args.epochs, "minibatches": args.minibatches, "fps_median": fps, "updates": timings,
              "note": "environment stepping excluded"}
    print(json.dumps({"fps_median": fps, "torch": torch.__version__}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tap", default="res3", choices=sorted(STAGES))
    p.add_argument("--rollout", type=int, default=64)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--minibatches", type=int, default=8)
    p.add_argument("--updates", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json")
    run(p.parse_args())
