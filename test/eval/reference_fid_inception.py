"""Reference pool3 features of the standard FID Inception (pytorch-fid's FIDInceptionA/C/E_1/E_2
blocks and torchvision's InceptionB/D, written out with torch.nn.functional), in float32 on the
CPU, for test/eval/fid-inception.test.ts.

Usage: reference_fid_inception.py WEIGHTS.safetensors OUT.bin IMAGE.bin H W [IMAGE.bin H W ...]
Images are u8 HWC RGB; OUT gets float32 [n, 2048]. Batch norms are applied unfolded (eval mode,
eps 0.001), so the engine's folding of BN into the conv is checked, not repeated.
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        assert info['dtype'] == 'F32', (name, info['dtype'])
        a, b = info['data_offsets']
        out[name] = torch.from_numpy(np.frombuffer(raw[base + a:base + b], dtype='<f4').reshape(info['shape']).copy())
    return out


W = {}


def conv(name, x, stride=1, padding=(0, 0)):
    y = F.conv2d(x, W[name + '.conv.weight'], None, stride, padding)
    y = F.batch_norm(y, W[name + '.bn.running_mean'], W[name + '.bn.running_var'],
                     W[name + '.bn.weight'], W[name + '.bn.bias'], False, 0.0, 0.001)
    return F.relu(y)


def avg(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def inception_a(p, x):
    b1 = conv(p + '.branch1x1', x)
    b5 = conv(p + '.branch5x5_2', conv(p + '.branch5x5_1', x), padding=(2, 2))
    d = conv(p + '.branch3x3dbl_1', x)
    d = conv(p + '.branch3x3dbl_2', d, padding=(1, 1))
    d = conv(p + '.branch3x3dbl_3', d, padding=(1, 1))
    return torch.cat([b1, b5, d, conv(p + '.branch_pool', avg(x))], 1)


def inception_b(p, x):
    b3 = conv(p + '.branch3x3', x, stride=2)
    d = conv(p + '.branch3x3dbl_1', x)
    d = conv(p + '.branch3x3dbl_2', d, padding=(1, 1))
    d = conv(p + '.branch3x3dbl_3', d, stride=2)
    return torch.cat([b3, d, F.max_pool2d(x, 3, stride=2)], 1)


def inception_c(p, x):
    b1 = conv(p + '.branch1x1', x)
    b7 = conv(p + '.branch7x7_1', x)
    b7 = conv(p + '.branch7x7_2', b7, padding=(0, 3))
    b7 = conv(p + '.branch7x7_3', b7, padding=(3, 0))
    d = conv(p + '.branch7x7dbl_1', x)
    d = conv(p + '.branch7x7dbl_2', d, padding=(3, 0))
    d = conv(p + '.branch7x7dbl_3', d, padding=(0, 3))
    d = conv(p + '.branch7x7dbl_4', d, padding=(3, 0))
    d = conv(p + '.branch7x7dbl_5', d, padding=(0, 3))
    return torch.cat([b1, b7, d, conv(p + '.branch_pool', avg(x))], 1)


def inception_d(p, x):
    b3 = conv(p + '.branch3x3_2', conv(p + '.branch3x3_1', x), stride=2)
    b7 = conv(p + '.branch7x7x3_1', x)
    b7 = conv(p + '.branch7x7x3_2', b7, padding=(0, 3))
    b7 = conv(p + '.branch7x7x3_3', b7, padding=(3, 0))
    b7 = conv(p + '.branch7x7x3_4', b7, stride=2)
    return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


def inception_e(p, x, max_pool):
    b1 = conv(p + '.branch1x1', x)
    t = conv(p + '.branch3x3_1', x)
    b3 = torch.cat([conv(p + '.branch3x3_2a', t, padding=(0, 1)), conv(p + '.branch3x3_2b', t, padding=(1, 0))], 1)
    d = conv(p + '.branch3x3dbl_2', conv(p + '.branch3x3dbl_1', x), padding=(1, 1))
    d = torch.cat([conv(p + '.branch3x3dbl_3a', d, padding=(0, 1)), conv(p + '.branch3x3dbl_3b', d, padding=(1, 0))], 1)
    pooled = F.max_pool2d(x, 3, stride=1, padding=1) if max_pool else avg(x)
    return torch.cat([b1, b3, d, conv(p + '.branch_pool', pooled)], 1)


def features(img):
    x = F.interpolate(img, size=(299, 299), mode='bilinear', align_corners=False)
    x = 2 * x - 1
    x = conv('Conv2d_1a_3x3', x, stride=2)
    x = conv('Conv2d_2a_3x3', x)
    x = conv('Conv2d_2b_3x3', x, padding=(1, 1))
    x = F.max_pool2d(x, 3, stride=2)
    x = conv('Conv2d_3b_1x1', x)
    x = conv('Conv2d_4a_3x3', x)
    x = F.max_pool2d(x, 3, stride=2)
    for p in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d'):
        x = inception_a(p, x)
    x = inception_b('Mixed_6a', x)
    for p in ('Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'):
        x = inception_c(p, x)
    x = inception_d('Mixed_7a', x)
    x = inception_e('Mixed_7b', x, False)
    x = inception_e('Mixed_7c', x, True)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def main():
    W.update(load_safetensors(sys.argv[1]))
    out = []
    args = sys.argv[3:]
    with torch.no_grad():
        for i in range(0, len(args), 3):
            h, w = int(args[i + 1]), int(args[i + 2])
            u8 = np.fromfile(args[i], dtype=np.uint8).reshape(h, w, 3)
            img = torch.from_numpy(u8.astype(np.float32) / 255).permute(2, 0, 1)[None]
            out.append(features(img))
    torch.cat(out).numpy().astype('<f4').tofile(sys.argv[2])


if __name__ == '__main__':
    main()
