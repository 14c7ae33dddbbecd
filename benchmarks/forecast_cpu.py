"""Issue #3's CPU forecast table: ms/step and atoms·steps/s for water 192 and 1,536 atoms, full and tiny
configs, float64 and float32, exact path — one side-by-side run appended to benchmarks/RESULTS.md.

    python benchmarks/forecast_cpu.py [--steps 3] [--skip-full-1536]

A thin wrapper over `trajcast-dist bench forecast` (trajcast_dist/bench.py), which does the timing. The exact
full-size model at 1,536 atoms needs ~7 GB and ~1 min per step here; --skip-full-1536 leaves it out.
"""

import argparse
import sys

from trajcast_dist.cli.main import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--skip-full-1536", action="store_true")
    args = parser.parse_args()
    code = main(["bench", "forecast", "--atoms", "192,1536", "--config", "tiny", "--dtype", "float64,float32",
                 "--steps", str(args.steps), "--notes", "issue 3 table: tiny config, exact path"])
    atoms = "192" if args.skip_full_1536 else "192,1536"
    code = code or main(["bench", "forecast", "--atoms", atoms, "--config", "water", "--dtype", "float64,float32",
                         "--steps", str(max(1, args.steps // 3)), "--notes", "issue 3 table: full config, exact path"])
    sys.exit(code)
