"""What fdatasync costs on this disk: N writes of 300 bytes, each followed
by fdatasync; MODE append grows the file, overwrite rewrites blocks written
and synced before, falloc writes into a posix_fallocate'd region.
usage: python3 fsync_probe.py FILE N append|overwrite|falloc   (removes FILE)
"""
import os, sys, time
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(path, os.O_RDWR|os.O_CREAT, 0o644)
if mode == "overwrite":
    os.write(fd, b"\0"*(300*n+4096)); os.fsync(fd)
elif mode == "falloc":
    os.posix_fallocate(fd, 0, 300*n+4096); os.fsync(fd)
lat=[]; t0=time.perf_counter()
for i in range(n):
    a=time.perf_counter()
    os.pwrite(fd, b"x"*300, i*300)
    os.fdatasync(fd)
    lat.append(time.perf_counter()-a)
t=time.perf_counter()-t0; lat.sort()
print(f"{mode} {path}: {n/t:.0f}/s p50 {lat[n//2]*1e6:.0f}us p99 {lat[int(n*.99)]*1e6:.0f}us")
os.unlink(path)
