"""proto"""
from __future__ import annotations

import numpy as np


def _validate(samples, low, high):
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"samples must be a 2-D array (n, d); got shape {x.shape}")
    n, d = x.shape
    if d < 1:
        raise ValueError(f"samples must have at least one dimension; got shape {x.shape}")
    if n < 10:
        raise ValueError(f"need at least 10 samples to count modes; got n={n}")
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(f"samples contain {bad} NaN/inf value(s)")
    tol = 1e-6 * (high - low)
    if x.min() < low - tol or x.max() > high + tol:
        raise ValueError(
            f"samples must lie in [{low}, {high}] (found min {x.min():.6g}, max {x.max():.6g});"
            " clip or squash the actions first")
    return np.clip(x, low, high)


def _knn(x, k, chunk=1024):
    """Exact k nearest neighbours (excluding self) by blocked brute force."""
    n = x.shape[0]
    xc = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", xc, xc)
    idx = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, chunk):
        e = min(n, s + chunk)
        d2 = sq[s:e, None] + sq[None, :] - 2.0 * (xc[s:e] @ xc.T)
        d2[np.arange(e - s), np.arange(s, e)] = np.inf
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        idx[s:e] = part
    # exact distances for the candidates, then sort
    diff = x[idx] - x[:, None, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    o = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, o, 1), np.take_along_axis(idx, o, 1)


def _intrinsic_dim(dist, floor, d):
    k = dist.shape[1]
    ok = dist[:, 0] > floor
    if ok.sum() < 10 or k < 3:
        return 1.0
    r = dist[ok]
    t = np.log(r[:, -1:] / r[:, :-1]).mean(axis=1)
    m = 1.0 / max(t.mean(), 1e-12)
    return float(np.clip(m, 1.0, d))


def prepare(samples, k=None, bound_margin=1e-4, low=-1.0, high=1.0,
            smooth=False):
    x = _validate(samples, low, high)
    n, d = x.shape
    half = 0.5 * (high - low)
    x = np.where(x >= high - bound_margin * half, high, x)
    x = np.where(x <= low + bound_margin * half, low, x)
    scale = float(np.sqrt(np.sum(x.var(axis=0))))
    if scale == 0.0:
        return None
    if k is None:
        k = int(np.clip(round(0.5 * np.sqrt(n)), 8, 40))
    k = int(min(k, n - 1))
    dist, idx = _knn(x, k)
    floor = 1e-6 * scale
    m = _intrinsic_dim(dist, floor, d)
    f = -m * np.log(np.maximum(dist[:, -1], floor))
    if smooth:
        f = np.median(np.concatenate([f[:, None], f[idx]], axis=1), axis=1)
    order = np.argsort(-f, kind="stable")
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n)
    nr = rank[idx]
    j = np.argmin(nr, axis=1)
    best = idx[np.arange(n), j]
    parent = np.where(nr[np.arange(n), j] < rank, best, np.arange(n))
    while True:
        p2 = parent[parent]
        if np.array_equal(p2, parent):
            break
        parent = p2
    basin = parent
    # inter-basin edges
    ii = np.repeat(np.arange(n), k)
    jj = idx.ravel()
    a, b = basin[ii], basin[jj]
    mask = a != b
    a, b = a[mask], b[mask]
    s = np.minimum(f[ii[mask]], f[jj[mask]])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # max saddle per pair
    key = lo * n + hi
    o = np.lexsort((-s, key))
    key, s, lo, hi = key[o], s[o], lo[o], hi[o]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    lo, hi, s = lo[first], hi[first], s[first]
    o = np.argsort(-s, kind="stable")
    lo, hi, s = lo[o], hi[o], s[o]
    return dict(x=x, n=n, f=f, basin=basin, rank=rank, lo=lo, hi=hi, s=s, m=m, k=k, idx=idx, dist=dist)


def merge(P, tau, min_weight=0.05):
    f, basin, rank, lo, hi, s, n = P['f'], P['basin'], P['rank'], P['lo'], P['hi'], P['s'], P['n']
    uf = {}
    peak = {}

    def find(u):
        r = u
        while uf.get(r, r) != r:
            r = uf[r]
        while uf.get(u, u) != r:
            nxt = uf[u]
            uf[u] = r
            u = nxt
        return r

    roots = np.unique(basin)
    for r in roots:
        peak[r] = f[r]
    pers = {}
    for u, v, sv in zip(lo.tolist(), hi.tolist(), s.tolist()):
        ru, rv = find(u), find(v)
        if ru == rv:
            continue
        if rank[ru] > rank[rv]:
            ru, rv = rv, ru  # ru is higher peak
        p = peak[rv] - sv
        if p < tau:
            uf[rv] = ru
            pers[rv] = p
    lab = np.array([find(r) for r in basin.tolist()])
    ul, cnt = np.unique(lab, return_counts=True)
    return dict(labels=lab, roots=ul, counts=cnt, n_basins=len(roots), pers=pers)


def analyse(samples, tau=1.0, min_weight=0.05, **kw):
    P = prepare(samples, **kw)
    if P is None:
        return dict(n_modes=1, labels=np.zeros(len(samples), int))
    return merge(P, tau, min_weight)
