"""Float64 NumPy/SciPy reference for test/eval/metrics.test.ts.

Reads row-major float64 feature files written by the test and prints one JSON object:
  fid   <a.bin> <b.bin> <d>                 mean/cov (numpy), FID three ways: scipy.linalg.sqrtm of
                                            Σ1·Σ2 (the pytorch-fid formula); eigvalsh of
                                            Σ1^½ Σ2 Σ1^½; and the sample-space form
                                            tr(Σ1^½ Σ2 Σ1^½)^½ = ‖X1c·X2cᵀ‖_* / √((n1−1)(n2−1))
                                            (nuclear norm of the centred cross-Gram matrix: the
                                            non-zero eigenvalues of Σ1·Σ2 are the squared singular
                                            values of X1c·X2cᵀ over (n1−1)(n2−1)), which has no
                                            square roots of round-off-sized eigenvalues when n < d
  kid   <a.bin> <b.bin> <d> <idx.bin> <m> <subsets>   MMD²_u per subset, direct kernel matrices
  pr    <a.bin> <b.bin> <d> <k>             k-NN precision/recall with full distance matrices
"""
import json
import sys

import numpy as np
import scipy.linalg


def load(path, d):
    x = np.fromfile(path, dtype='<f8')
    return x.reshape(-1, d)


def fid(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    fid_sqrtm = diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    mid = root1 @ s2 @ root1
    ev = np.linalg.eigvalsh((mid + mid.T) / 2)
    fid_eigh = diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum()
    x1, x2 = a - mu1, b - mu2
    nuclear = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((len(a) - 1) * (len(b) - 1))
    fid_nuclear = diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * nuclear
    return {
        'fid_nuclear': float(fid_nuclear),
        'fid_sqrtm': float(fid_sqrtm), 'fid_eigh': float(fid_eigh), 'mean_term': float(diff.dot(diff)),
        'mu1': mu1.tolist(), 'sigma1_diag': np.diag(s1).tolist(), 'sigma1_row0': s1[0].tolist(),
        'sigma1_max': float(np.abs(s1).max()),
    }


def kid(a, b, idx, m, subsets):
    d = a.shape[1]
    idx = idx.reshape(subsets, 2, m)
    est = []
    for s in range(subsets):
        x, y = a[idx[s, 0]], b[idx[s, 1]]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        est.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    est = np.array(est)
    return {'kid': float(est.mean()), 'kid_std': float(est.std()), 'estimates': est.tolist()}


def sqdist(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def pr(real, gen, k):
    def radii(x):
        dist = sqdist(x, x)
        return np.partition(dist, k, axis=1)[:, k]  # index 0 is the sample itself (distance 0)
    rr, rg = radii(real), radii(gen)
    precision = (sqdist(gen, real) <= rr[None, :]).any(1).mean()
    recall = (sqdist(real, gen) <= rg[None, :]).any(1).mean()
    return {'precision': float(precision), 'recall': float(recall)}


def main():
    cmd = sys.argv[1]
    d = int(sys.argv[4])
    a, b = load(sys.argv[2], d), load(sys.argv[3], d)
    if cmd == 'fid':
        out = fid(a, b)
    elif cmd == 'kid':
        idx = np.fromfile(sys.argv[5], dtype='<i4')
        out = kid(a, b, idx, int(sys.argv[6]), int(sys.argv[7]))
    elif cmd == 'pr':
        out = pr(a, b, int(sys.argv[5]))
    else:
        raise SystemExit(f'unknown command {cmd}')
    print(json.dumps(out))


if __name__ == '__main__':
    main()
