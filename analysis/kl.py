"""proto kl"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln


def _as2d(a, name):
    x = np.asarray(a, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d); got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN/inf")
    return x


def _whiten_mat(cov):
    d = cov.shape[0]
    ridge = 1e-12 * max(np.trace(cov) / d, 1e-300)
    L = np.linalg.cholesky(cov + ridge * np.eye(d))
    return np.linalg.inv(L)


def kl_divergence(p, q, k=5, whiten='p', jitter=1e-8, seed=0):
    x = _as2d(p, 'p'); y = _as2d(q, 'q')
    n, d = x.shape; m = y.shape[0]
    if whiten:
        if whiten == 'p':
            cov = np.cov(x, rowvar=False).reshape(d, d)
        elif whiten == 'q':
            cov = np.cov(y, rowvar=False).reshape(d, d)
        else:
            cov = np.cov(np.vstack([x - x.mean(0), y - y.mean(0)]), rowvar=False).reshape(d, d)
        W = _whiten_mat(cov)
        mu = x.mean(0)
        x = (x - mu) @ W.T
        y = (y - mu) @ W.T
    rho = cKDTree(x).query(x, k + 1)[0][:, -1]
    nu = cKDTree(y).query(x, k)[0]
    nu = nu[:, -1] if nu.ndim == 2 else nu
    if np.any(rho <= 0) or np.any(nu <= 0):
        rng = np.random.default_rng(seed)
        s = jitter * np.sqrt(np.mean(np.var(np.vstack([x, y]), axis=0)))
        x = x + s * rng.standard_normal(x.shape)
        y = y + s * rng.standard_normal(y.shape)
        rho = cKDTree(x).query(x, k + 1)[0][:, -1]
        nu = cKDTree(y).query(x, k)[0]
        nu = nu[:, -1] if nu.ndim == 2 else nu
    return float(d * np.mean(np.log(nu / rho)) + np.log(m / (n - 1)))


def kl_adaptive(p, q, k=5, whiten='p'):
    """WKV adaptive: eps_i = max(rho_k, nu_k); l_i, k_i counts within eps."""
    x = _as2d(p, 'p'); y = _as2d(q, 'q')
    n, d = x.shape; m = y.shape[0]
    if whiten:
        cov = np.cov(x, rowvar=False).reshape(d, d) if whiten == 'p' else np.cov(np.vstack([x - x.mean(0), y - y.mean(0)]), rowvar=False).reshape(d, d)
        W = _whiten_mat(cov); mu = x.mean(0)
        x = (x - mu) @ W.T; y = (y - mu) @ W.T
    tx, ty = cKDTree(x), cKDTree(y)
    rho = tx.query(x, k + 1)[0][:, -1]
    nu = ty.query(x, k)[0]; nu = nu[:, -1] if nu.ndim == 2 else nu
    eps = np.maximum(rho, nu)
    li = np.array([len(v) for v in tx.query_ball_point(x, eps * (1 + 1e-12))]) - 1
    ki = np.array([len(v) for v in ty.query_ball_point(x, eps * (1 + 1e-12))])
    rho_l = np.array([np.sort(np.linalg.norm(x - xi, axis=1))[l] for xi, l in zip(x, li)]) if False else None
    # use distances of the li-th neighbour and ki-th neighbour
    dx = tx.query(x, li.max() + 1)[0]
    dy = ty.query(x, ki.max())[0]
    if dy.ndim == 1: dy = dy[:, None]
    rl = dx[np.arange(n), li]
    rk = dy[np.arange(n), ki - 1]
    return float(d * np.mean(np.log(rk / rl)) + np.mean(digamma(li) - digamma(ki)) + np.log(m / (n - 1)))


def gaussian_kl(mu0, cov0, mu1, cov1):
    mu0 = np.atleast_1d(np.asarray(mu0, float)); mu1 = np.atleast_1d(np.asarray(mu1, float))
    c0 = np.atleast_2d(np.asarray(cov0, float)); c1 = np.atleast_2d(np.asarray(cov1, float))
    d = mu0.shape[0]
    L1 = np.linalg.cholesky(c1); L0 = np.linalg.cholesky(c0)
    A = np.linalg.solve(L1, L0)
    b = np.linalg.solve(L1, mu1 - mu0)
    return float(0.5 * (np.sum(A ** 2) + b @ b - d + 2 * np.sum(np.log(np.diag(L1))) - 2 * np.sum(np.log(np.diag(L0)))))


def kl_entropy(x, k=5):
    n, d = x.shape
    r = cKDTree(x).query(x, k + 1)[0][:, -1]
    logV = 0.5 * d * np.log(np.pi) - gammaln(0.5 * d + 1)
    return float(digamma(n) - digamma(k) + logV + d * np.mean(np.log(r)))


def kl_corrected(p, q, k=5, n_ref=2, seed=0, whiten='p'):
    x = _as2d(p, 'p'); y = _as2d(q, 'q')
    n, d = x.shape; m = y.shape[0]
    raw = kl_divergence(x, y, k=k, whiten=whiten)
    mp, mq = x.mean(0), y.mean(0)
    cp = np.cov(x, rowvar=False).reshape(d, d); cq = np.cov(y, rowvar=False).reshape(d, d)
    tru = gaussian_kl(mp, cp, mq, cq)
    rng = np.random.default_rng(seed)
    Lp, Lq = np.linalg.cholesky(cp), np.linalg.cholesky(cq)
    corr = []
    for _ in range(n_ref):
        a = mp + rng.standard_normal((n, d)) @ Lp.T
        b = mq + rng.standard_normal((m, d)) @ Lq.T
        corr.append(kl_divergence(a, b, k=k, whiten=whiten) - tru)
    return raw - float(np.mean(corr))
