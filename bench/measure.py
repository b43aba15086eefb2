"""Shared by the benchmarks: code that each measured side runs, timing a block and sampling its
peak memory above what the process held when the block began (from /proc, every 5 ms)."""

import textwrap

MEASURE = textwrap.dedent("""
    import os, threading, time
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    class Peak:
        def __enter__(self):
            self.base = self.peak = rss(); self.stop = False
            def sample():
                while not self.stop:
                    self.peak = max(self.peak, rss()); time.sleep(0.005)
            self.thread = threading.Thread(target=sample, daemon=True); self.thread.start()
            self.t = time.perf_counter(); return self
        def __exit__(self, *exc):
            self.seconds = time.perf_counter() - self.t
            self.stop = True; self.thread.join(); self.peak = max(self.peak, rss())
            self.extra_mb = (self.peak - self.base) / 2**20
""")
