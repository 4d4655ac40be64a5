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


def _spkde(q, x, h, m, loo, chunk=512):
    """log of a sample-point (variable bandwidth) Gaussian KDE, up to a constant."""
    from scipy.special import logsumexp
    out = np.empty(len(q))
    xm = x.mean(axis=0)
    xc = x - xm
    sq = np.einsum("ij,ij->i", xc, xc)
    logw = -m * np.log(h)
    inv = 0.5 / h ** 2
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk] - xm
        d2 = np.einsum("ij,ij->i", qc, qc)[:, None] + sq[None, :] - 2.0 * (qc @ xc.T)
        np.maximum(d2, 0.0, out=d2)
        a = logw[None, :] - d2 * inv[None, :]
        if loo:
            r = np.arange(a.shape[0])
            a[r, s + r] = -np.inf
        out[s:s + chunk] = logsumexp(a, axis=1)
    return out


def _kth_dist(q, x, k, chunk=1024):
    """Distance from each query row to its k-th nearest row of x."""
    out = np.empty(len(q))
    xm = x.mean(axis=0)
    xc = x - xm
    sq = np.einsum("ij,ij->i", xc, xc)
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk] - xm
        d2 = np.einsum("ij,ij->i", qc, qc)[:, None] + sq[None, :] - 2.0 * (qc @ xc.T)
        out[s:s + chunk] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return np.sqrt(np.maximum(out, 0.0))


def _component_bridges(x, comp, ncomp):
    """For every pair of kNN-graph components, the closest pair of points (i, j)."""
    ci, cj = [], []
    members = [np.flatnonzero(comp == c) for c in range(ncomp)]
    for a in range(ncomp):
        xa = x[members[a]]
        for b in range(a + 1, ncomp):
            xb = x[members[b]]
            d2 = (np.einsum("ij,ij->i", xa, xa)[:, None] + np.einsum("ij,ij->i", xb, xb)[None, :]
                  - 2.0 * xa @ xb.T)
            p = np.unravel_index(np.argmin(d2), d2.shape)
            ci.append(members[a][p[0]])
            cj.append(members[b][p[1]])
    return np.array(ci, dtype=np.int64), np.array(cj, dtype=np.int64)


def _intrinsic_dim(dist, floor, d):
    k = dist.shape[1]
    ok = dist[:, 0] > floor
    if ok.sum() < 10 or k < 3:
        return 1.0
    r = dist[ok]
    t = np.log(r[:, -1:] / r[:, :-1]).mean(axis=1)
    m = 1.0 / max(t.mean(), 1e-12)
    return float(np.clip(m, 1.0, d))


def prepare(samples, k=None, bound_margin=0.0, low=-1.0, high=1.0,
            smooth=False, midpoint=True, density='kde', bw=1.0, abram=False, alpha=None):
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
    if density == 'kde':
        rk = np.maximum(dist[:, -1], floor)
        alpha = (min(1.0, m / 2.0) if abram else 1.0) if alpha is None else alpha
        rg = np.exp(np.mean(np.log(rk)))
        h = np.maximum(bw * rg * (rk / rg) ** alpha / np.sqrt(m), floor)
        f = _spkde(x, x, h, m, loo=True)
    if smooth == 'median':
        f = np.median(np.concatenate([f[:, None], f[idx]], axis=1), axis=1)
    elif smooth == 'mean':
        f = np.mean(np.concatenate([f[:, None], f[idx]], axis=1), axis=1)
    elif smooth == 'half':
        h = max(2, k // 2)
        f = np.mean(np.concatenate([f[:, None], f[idx[:, :h]]], axis=1), axis=1)
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
    # inter-basin edges (undirected, deduplicated)
    ii = np.repeat(np.arange(n), k)
    jj = idx.ravel()
    mask = basin[ii] != basin[jj]
    ei, ej = np.minimum(ii[mask], jj[mask]), np.maximum(ii[mask], jj[mask])
    # connect components of the kNN graph by their closest pairs
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    G = coo_matrix((np.ones(n * k), (ii, jj)), shape=(n, n))
    ncomp, comp = connected_components(G, directed=False)
    if ncomp > 1:
        ci, cj = _component_bridges(x, comp, ncomp)
        ei = np.concatenate([ei, np.minimum(ci, cj)])
        ej = np.concatenate([ej, np.maximum(ci, cj)])
    key = np.unique(ei * n + ej)
    ei, ej = key // n, key % n
    s = np.minimum(f[ei], f[ej])
    if midpoint and len(ei):
        mid = 0.5 * (x[ei] + x[ej])
        if density == 'kde':
            fmid = _spkde(mid, x, h, m, loo=False)
        else:
            rmid = _kth_dist(mid, x, k)
            fmid = -m * np.log(np.maximum(rmid, floor))
        s = np.minimum(s, fmid)
    a, b = basin[ei], basin[ej]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
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
