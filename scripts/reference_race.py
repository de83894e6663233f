#!/usr/bin/env python3
"""Compare `pitwall strategy --all-cars` with the reference Monte Carlo model (TUMFTM race-simulation).

Reads, from $PITWALL_SHARED/data/strategy-reference/austin-2019/ (never copied into the repo):
- pars_Austin_2019_mcrand.ini: TUMFTM's race parameters (LGPL-3.0): plans, top speeds, overtaking,
  DRS, pit losses, tyre ageing under SC/VSC, scheduled retirements;
- one of the NAME.toml scenarios: the values TUMFTM keeps in its pars_mcs.ini (noise sigma, start
  performance, failure probabilities, SC tables), already mapped to our format;
- tumftm-finish-distribution.json: TUMFTM's prediction (2,100 races).
Optionally $TUMFTM_MCS_INI: TUMFTM's racesim/input/parameters/pars_mcs.ini (a checkout of
github.com/TUMFTM/race-simulation) for per-team standstill, per-driver start spread, accident vs
failure probabilities and the VSC length table.

Builds one scenario (every car on its exact TUMFTM plan) in a temp dir, runs it with --all-cars,
prints per driver ours / TUMFTM / difference and summary statistics. Python 3.11, stdlib only.
"""

import configparser
import json
import math
import os
import subprocess
import sys
import tempfile
import tomllib

COMPOUNDS = {"A3": "hard", "A4": "medium", "A6": "soft"}  # Austin 2019: C3 hardest .. C5 softest


def read_ini(path):
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    cp.optionxform = str
    with open(path, encoding="utf-8") as f:
        cp.read_file(f)
    out = {}
    for sec in cp.sections():
        for k, v in cp.items(sec):
            out[k] = json.loads(v)
    return out


def read_mcs(path, season):
    cp = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",))
    cp.optionxform = str
    with open(path, encoding="utf-8") as f:
        cp.read_file(f)
    g = lambda sec, k: json.loads(cp.get(sec, k))
    return {
        "p_accident": g(f"SEASON_{season}", "p_accident"),
        "p_failure": g(f"SEASON_{season}", "p_failure"),
        "fcy": g("ALL_SEASONS", "p_fcy_phases"),
        "fisk": g("ALL_SEASONS", "t_pit_var_fisk_pars"),
        "startperf": g("ALL_SEASONS", "t_startperf"),
    }


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def fisk_mean(c, scale):
    b = math.pi / c
    return scale * b / math.sin(b)


def build(ini, base, mcs):
    rp, tp = ini["race_pars"], ini["track_pars"]
    drivers, cars_ini = ini["driver_pars"], ini["car_pars"]
    tires = ini["tireset_pars"]
    params = dict(base["params"])
    params.update({
        "overtaking.threshold_s": tp["t_gap_overtake"],
        "overtaking.top_speed_coeff_s_per_kmh": tp["t_gap_overtake_vel"],
        "overtaking.pass_rule": "race_time",
        "overtaking.duel_penalty_s": rp["t_duel"],
        "overtaking.loser_penalty_s": rp["t_overtake_loser"],
        "overtaking.hold_gap_s": rp["min_t_dist"],
        "overtaking.drs_gain_s": -tp["t_drseffect"],
        "overtaking.drs_window_s": rp["drs_window"],
        "overtaking.drs_from_lap": rp["drs_allow_lap"],
        "overtaking.drs_sc_delay_laps": rp["drs_sc_delay"],
        "safety_car.sc_gap_s": rp["min_t_dist_sc"],
        "safety_car.sc_lap_time_factor": tp["mult_t_lap_sc"],
        "safety_car.vsc_lap_time_factor": tp["mult_t_lap_fcy"],
        "pit.lane_loss_green_s": tp["t_pitdrive_inlap"] + tp["t_pitdrive_outlap"],
        "pit.lane_loss_vsc_s": tp["t_pitdrive_inlap_fcy"] + tp["t_pitdrive_outlap_fcy"],
        "pit.lane_loss_sc_s": tp["t_pitdrive_inlap_sc"] + tp["t_pitdrive_outlap_sc"],
        "pit.inlap_loss_green_s": tp["t_pitdrive_inlap"],
        "pit.inlap_loss_vsc_s": tp["t_pitdrive_inlap_fcy"],
        "pit.inlap_loss_sc_s": tp["t_pitdrive_inlap_sc"],
        "pit.standstill_on_outlap": bool(tp["pits_aft_finishline"]),
        "pit.min_stint_laps": 1,
    })
    any_tyre = next(iter(tires.values()))
    any_car = next(iter(cars_ini.values()))
    params["safety_car.tyre_age_factor"] = any_tyre["mult_tiredeg_sc"]
    params["safety_car.vsc_tyre_age_factor"] = any_tyre["mult_tiredeg_fcy"]
    params["safety_car.fuel_use_factor"] = any_car["mult_consumption_sc"]
    params["safety_car.vsc_fuel_use_factor"] = any_car["mult_consumption_fcy"]
    # SC start blocks after a lap-1 probability (shared/race-model.md; pars_mcs.ini when given).
    weights = [0.136, 0.136, 0.08, 0.193, 0.091]
    if mcs:
        f = mcs["fcy"]
        weights = f["p_sc_start"][1:]
        params["safety_car.first_lap_probability"] = f["p_sc_start"][0]
        params["safety_car.count_probabilities"] = f["p_sc_quant"]
        params["safety_car.length_probabilities"] = f["p_sc_duration"]
        params["safety_car.accident_retires_car"] = True
        params["retirements.vsc_probability"] = f["p_vsc_aft_failure"]
        params["retirements.vsc_length_probabilities"] = f["p_vsc_duration"]
        params["retirements.vsc_min_laps"] = 1
        params["retirements.vsc_max_laps"] = len(f["p_vsc_duration"])
    params["safety_car.start_blocks"] = len(weights)
    params["safety_car.start_block_weights"] = weights

    base_cars = {c["car_id"]: c for c in base["race"]["cars"]}
    retire = ini["event_pars"]["retire_data"]["retirements"] or []
    scheduled = {r[0]: r[1] for r in retire}
    cars = []
    for d in rp["participants"]:
        dp = drivers[d]
        c = dict(base_cars[d])
        c.pop("plan", None)
        strat = dp["strategy_info"]
        c["position"] = dp["p_grid"]
        c["compound"] = COMPOUNDS[strat[0][1]]
        c["tyre_age_laps"] = float(strat[0][2])
        c["plan"] = [{"lap": s[0], "compound": COMPOUNDS[s[1]]} for s in strat[1:]]
        c["top_speed_kmh"] = dp["vel_max"]
        team = dp["team"]
        c["pace_offset_s"] = round(
            tp["t_q"] + tp["t_gap_racepace"] - base["params"]["track.base_lap_time_s"]
            + dp["t_driver"] + cars_ini[team]["t_car"], 6)
        for comp_code, comp in COMPOUNDS.items():
            t = tires[d][comp_code]
            c.setdefault("tyres", {})[comp] = {"k0_s": t["k_0"], "k1_s_per_lap": t["k_1_lin"], "k2_s_per_lap2": 0.0}
        if mcs:
            name = dp["name"]
            sp = mcs["startperf"].get(name, mcs["startperf"]["unknown"])
            c["start_perf_mean_s"] = sp["mean"]
            c["start_perf_sigma_s"] = sp["sigma"]
            c["failure_probability"] = mcs["p_failure"][team]
            c["accident_weight"] = mcs["p_accident"][name]
            shape, loc, scale = mcs["fisk"][team]
            c["standstill"] = {"min_s": round(tp["t_pit_tirechange_min"] + loc, 6),
                               "fisk_shape": shape, "fisk_scale_s": scale}
        if d in scheduled:
            c["retirement"] = {"at_lap": float(scheduled[d])}
        cars.append(c)
    cars.sort(key=lambda c: c["position"])
    return params, cars, scheduled


def write_scenario(path, params, cars, iterations, seed):
    lines = ["# generated by scripts/reference_race.py from TUMFTM's pars_Austin_2019_mcrand.ini",
             f'car_id = "{cars[0]["car_id"]}"', f"iterations = {iterations}", f"seed = {seed}", "", "[params]"]
    for k, v in params.items():
        lines.append(f"{k} = {toml_value(v)}")
    lines += ["", "[race]", "current_lap = 0", f"total_laps = {TOTAL_LAPS}"]
    for c in cars:
        lines += ["", "[[race.cars]]"]
        for k, v in c.items():
            if k == "tyres":
                for comp, m in v.items():
                    lines.append(f"tyres.{comp} = {toml_value(m)}")
            else:
                lines.append(f"{k} = {toml_value(v)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def ranks(v):
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    return cov / (va * vb)


TOTAL_LAPS = 56


def main():
    global TOTAL_LAPS
    shared = os.environ.get("PITWALL_SHARED", "../shared")
    ref = os.path.join(shared, "data", "strategy-reference", "austin-2019")
    ini_path = os.path.join(ref, "pars_Austin_2019_mcrand.ini")
    if not os.path.exists(ini_path):
        print(f"reference race not found under {ref} (set PITWALL_SHARED): nothing to compare")
        return 0
    binary = os.environ.get("PITWALL_BIN", "target/release/pitwall")
    iterations = int(os.environ.get("ITERATIONS", "20000"))
    seed = int(os.environ.get("SEED", "7"))
    ini = read_ini(ini_path)
    TOTAL_LAPS = ini["race_pars"]["tot_no_laps"]
    with open(os.path.join(ref, "BOT.toml"), "rb") as f:
        base = tomllib.load(f)
    base["params"] = {}
    with open(os.path.join(ref, "BOT.toml"), "rb") as f:
        raw = tomllib.load(f)
    # Flatten the [params] table back to dotted keys.
    for sec, tab in raw.get("params", {}).items():
        for k, v in tab.items():
            base["params"][f"{sec}.{k}"] = v
    mcs_path = os.environ.get("TUMFTM_MCS_INI")
    mcs = read_mcs(mcs_path, ini["race_pars"]["season"]) if mcs_path and os.path.exists(mcs_path) else None
    params, cars, scheduled = build(ini, base, mcs)
    with open(os.path.join(ref, "tumftm-finish-distribution.json"), encoding="utf-8") as f:
        tum = json.load(f)

    print(f"reference: {ini_path}")
    print(f"scheduled retirements in the .ini: {scheduled or 'none'}")
    print(f"pars_mcs.ini: {mcs_path if mcs else 'not given (TUMFTM_MCS_INI): pooled values from BOT.toml'}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "austin-2019-all-cars.toml")
        write_scenario(path, params, cars, iterations, seed)
        if os.environ.get("KEEP_SCENARIO"):
            with open(path, encoding="utf-8") as f, open(os.environ["KEEP_SCENARIO"], "w") as g:
                g.write(f.read())
        t0 = os.times()
        out = subprocess.run([binary, "strategy", "--scenario", path, "--all-cars", "--json"],
                             check=True, capture_output=True, text=True).stdout
        t1 = os.times()
    r = json.loads(out)
    child_cpu = (t1.children_user - t0.children_user) + (t1.children_system - t0.children_system)
    ours = {c["car_id"]: c for c in r["cars"]}
    names = sorted(tum["drivers"], key=lambda d: tum["drivers"][d]["mean_position"])
    print()
    print(f"{'driver':<6} {'ours':>6} {'TUMFTM':>7} {'diff':>6} {'TV':>5}  plan")
    a, b, tvs = [], [], []
    for d in names:
        o, t = ours[d], tum["drivers"][d]
        tv = 0.5 * sum(abs(p - q) for p, q in zip(o["finish_position_distribution"], t["p_position"]))
        a.append(o["expected_position"])
        b.append(t["mean_position"])
        tvs.append(tv)
        plan = ", ".join(f"L{s['lap']} {s['compound']}" for s in o["strategy"]) or "no stop"
        print(f"{d:<6} {o['expected_position']:>6.2f} {t['mean_position']:>7.2f} "
              f"{o['expected_position'] - t['mean_position']:>+6.2f} {tv:>5.2f}  {plan}")
    diffs = [x - y for x, y in zip(a, b)]
    worst = max(range(len(diffs)), key=lambda i: abs(diffs[i]))
    print()
    print(f"mean |diff| {sum(abs(x) for x in diffs) / len(diffs):.3f} positions, "
          f"max |diff| {abs(diffs[worst]):.2f} ({names[worst]} {diffs[worst]:+.2f}), "
          f"Spearman {spearman(a, b):.3f}, mean TV {sum(tvs) / len(tvs):.3f}")
    rps = r.get("races_per_s_per_core")
    if child_cpu > 0:
        rps = r["races_simulated"] / child_cpu
    print(f"{r['races_simulated']} races (seed {r['seed']}) in {r['elapsed_s']:.2f} s wall, "
          f"{child_cpu:.2f} s CPU: {rps:,.0f} races/s per core = {rps / 18.1:,.0f}x TUMFTM (18.1 races/s, one core); "
          f"SC per race: TUMFTM {tum['sc_per_race']:.2f}, VSC {tum['vsc_per_race']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
