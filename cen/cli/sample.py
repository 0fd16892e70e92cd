"""``cen sample``."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_sample(args: argparse.Namespace) -> int:
    from cen.sources import sampling

    plan = sampling.sample_plan(args.n, seed=args.seed, bbox=args.bbox, countries=args.countries)
    if args.action == "plan":
        from cen import tables

        out = tables.write_parquet(plan, args.out or "sample_plan.parquet")
        print(f"{len(plan)} sample points -> {out}")
        print(plan.groupby("stratum").size().to_string())
        return 0
    from cen.sources import stac

    catalog = stac.open_catalog(args.provider, url=args.stac_url)
    tiles, skipped = sampling.build_samples(
        plan, args.workdir, catalog=catalog, provider=args.provider, dates=args.dates, max_cloud=args.max_cloud,
        worldcover_year=args.worldcover_year, worldcover_url=args.worldcover_url)
    from cen import tiling

    print(sample_accounting(len(plan), len(tiles), skipped))
    if len(skipped):
        print(f"reasons per point in {Path(args.workdir) / 'samples_skipped.csv'}")
    if len(tiles) == 0:
        raise RuntimeError(f"{Path(args.workdir) / 'tiles.parquet'}: no tile was built from the {len(plan)} "
                           "sample point(s); see the reasons above")
    print(f"{tiling.eligibility_summary(tiles)} -> {Path(args.workdir) / 'tiles.parquet'}")
    return 0


def sample_accounting(n_points: int, n_built: int, skipped) -> str:
    """``"N sample points: B tiles built, S skipped (StacError: a, WorldCoverError: b)"``; the
    reasons are grouped by their kind (the text before the first colon)."""
    kinds = skipped["reason"].fillna("unknown").astype(str).str.split(":").str[0].value_counts() if len(skipped) else {}
    line = f"{n_points} sample points: {n_built} tiles built, {len(skipped)} skipped"
    if len(kinds):
        line += " (" + ", ".join(f"{k}: {int(v)}" for k, v in kinds.items()) + ")"
    return line


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="global sample plans; Sentinel-2 L2A + WorldCover tiles for them",
                       description="'plan' writes N seeded, continent-stratified points over land; 'build' fetches "
                       "the least-cloudy scene and WorldCover labels for each and writes WORKDIR/tiles.parquet.")
    p.add_argument("action", choices=["plan", "build"])
    p.add_argument("workdir", nargs="?", default="build/stac", help="build: output folder [build/stac]")
    p.add_argument("-n", type=int, default=10, help="number of sample points [10]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bbox", type=float, nargs=4, metavar=("W", "S", "E", "N"), help="restrict to a lon/lat box")
    p.add_argument("--countries", nargs="+", help="restrict to Natural Earth country names")
    p.add_argument("--out", help="plan: output Parquet [sample_plan.parquet]")
    p.add_argument("--provider", default="earth-search", choices=["earth-search", "planetary-computer"])
    p.add_argument("--stac-url", help="another STAC API endpoint")
    p.add_argument("--dates", default="2020-01-01/2020-12-31", help="START/END [2020]")
    p.add_argument("--max-cloud", type=float, default=20.0, help="maximum scene cloud cover in %% [20]")
    p.add_argument("--worldcover-year", type=int, default=2020, choices=[2020, 2021])
    p.add_argument("--worldcover-url", help="mirror of s3://esa-worldcover (same key layout)")
    p.set_defaults(func=_cmd_sample)
