"""Baseline (b) of the benchmark: a plain pass-through pymilter that receives every header and body chunk and
accepts. No protocol shortcuts (every step is answered), like a naive milter."""
import sys

import Milter


class PassThrough(Milter.Base):
    def envfrom(self, f, *params):
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        return Milter.CONTINUE

    def header(self, name, value):
        return Milter.CONTINUE

    def eoh(self):
        return Milter.CONTINUE

    def body(self, chunk):
        return Milter.CONTINUE

    def eom(self):
        return Milter.ACCEPT


if __name__ == "__main__":
    Milter.factory = PassThrough
    Milter.runmilter("passthrough", sys.argv[1], timeout=240)
