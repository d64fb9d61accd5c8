"""The statistic bank is exact chemistry on discrete graphs (checked against RDKit) and has a gradient
on relaxed ones; an external package adds a statistic to the `mol` domain through an entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hebm_mol.bank import BondOrderCounts, ChargeMass, ElementCounts, FragmentCount, RingCounts
from hebm_mol.graph import QM9_SPEC, smiles_to_graph
from rdkit import Chem

SMILES = ["C1CC1", "C1CCC1", "C1CCCC1", "C1CCCCC1", "CC(=O)N", "C#N", "OC1CC2CC12", "C1=CC=CC=C1", "C[N+](C)(C)C"]


def graph(smi: str):
    x, a, n = smiles_to_graph(smi, QM9_SPEC)
    return x[None].double(), a[None].double(), (torch.arange(x.shape[0]) < n)[None]


@pytest.mark.parametrize("smi", SMILES)
def test_counts_are_rdkit_counts_on_discrete_graphs(smi):
    g = graph(smi)
    mol = Chem.MolFromSmiles(smi)
    Chem.Kekulize(mol, clearAromaticFlags=True)
    elements = ElementCounts().compute(g)[0].tolist()
    assert elements == [sum(a.GetSymbol() == e for a in mol.GetAtoms()) for e in QM9_SPEC.atoms]
    orders = BondOrderCounts().compute(g)[0].tolist()
    assert orders == [sum(int(b.GetBondTypeAsDouble()) == o for b in mol.GetBonds()) for o in (1, 2, 3)]
    ring_sizes = [len(r) for r in mol.GetRingInfo().AtomRings()]
    rings = RingCounts().compute(g)[0].tolist()
    if smi == "OC1CC2CC12":  # fused 3- and 4-ring (RDKit's SSSR) and the 5-cycle around both
        assert sorted(ring_sizes) == [3, 4] and rings[:3] == [1, 1, 1]
    else:  # single rings: the simple cycles are the SSSR
        assert rings[:3] == [ring_sizes.count(k) for k in (3, 4, 5)]
    charge = ChargeMass().compute(g)[0].item()
    assert charge == pytest.approx(sum(a.GetFormalCharge() for a in mol.GetAtoms()))


def test_bank_has_gradients_on_relaxed_graphs():
    x, a, mask = graph("CC(=O)N")
    x = (x + 0.1 * torch.randn_like(x)).requires_grad_()
    a = (a + 0.1 * torch.randn_like(a)).requires_grad_()
    for stat in (ElementCounts(), BondOrderCounts(), RingCounts(), ChargeMass(), FragmentCount()):
        stat((x, a, mask)).sum().backward()
    assert x.grad.abs().sum() > 0 and a.grad.abs().sum() > 0


def test_an_external_package_adds_a_statistic_to_mol_and_trains_with_it(tmp_path):
    site = tmp_path / "site"
    (site / "hebm_teststat").mkdir(parents=True)
    (site / "hebm_teststat" / "__init__.py").write_text(
        textwrap.dedent(
            """\
            from hebm_core import statistic

            @statistic
            def bond_mass(graph):
                x, a, mask = graph
                return a.clamp_min(0).sum((1, 2)) / 2

            def broken():
                raise RuntimeError("never loads")
            """
        )
    )
    dist = site / "hebm_teststat-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hebm-teststat\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[hebm.statistics]\nmol.bond_mass = hebm_teststat:bond_mass\nmol.broken = hebm_teststat:nope\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "hebm_core.cli"]
    listed = subprocess.run([*cli, "plugins", "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    data = json.loads(listed.stdout)
    assert "bond_mass" in data["plugins"]["mol"]["statistics"] and "statistic mol.broken" in data["failures"]
    out = tmp_path / "run"
    tiny = ["--set", "model.hidden=8", "--set", "model.depth=1", "--set", "train.batch_size=16"]
    run = subprocess.run(
        [*cli, "train", "--plugin", "mol", "--statistic", "bond_mass", "--steps", "3", *tiny, "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert set(json.loads((out / "report.json").read_text())["eta"]) == {"bond_mass"}


def test_reports_warn_when_most_valid_molecules_are_fragmented():
    """Validity counts a salad of fragments as valid: the metric says so next to valid-and-connected."""
    from hebm_core import runs
    from hebm_core.config import resolve_config

    exp = runs.build(resolve_config(overrides={"plugin": "mol", "statistics": [], "train": {"device": "cpu"}}))
    graphs = [smiles_to_graph(s, QM9_SPEC) for s in ["C.C.O", "CC.N", "C.C", "CCO"]]
    x = torch.stack([g[0] for g in graphs]).float()
    a = torch.stack([g[1] for g in graphs]).float()
    mask = torch.stack([torch.arange(x.shape[1]) < g[2] for g in graphs])
    metric = runs.build_metrics(exp)[1]
    metric.update((x, a, mask))
    with pytest.warns(UserWarning, match="75 % of the valid molecules are fragmented"):
        out = metric.compute()
    assert out["validity"] == 1.0 and out["validity_connected"] == 0.25


@pytest.mark.parametrize(
    "smi", ["C", "CCCCCCCCC", "C1CCCCC1", "CC.O", "C.C.C", "CCO.N#N", "OC1CC2CC12", "C.C.C.C.C.C.C.C.C"]
)
def test_fragments_count_rdkits_fragments_on_discrete_graphs(smi):
    """Within 0.02 of the fragment count, the 9-atom path (the smallest λ₂) included."""
    frags = FragmentCount().compute(graph(smi))[0].item()
    assert frags == pytest.approx(len(Chem.GetMolFrags(Chem.MolFromSmiles(smi))), abs=0.02)


def test_the_fragment_gradient_pushes_only_on_bonds_that_join_fragments():
    x, a, mask = graph("CCC.CC")  # atoms 0-1-2 and 3-4
    a = a.clone().requires_grad_()
    FragmentCount().compute((x, a, mask)).sum().backward()
    g = a.grad[0]
    assert g[0, 3] < -10 and g[2, 4] < -10  # a bond across lowers the count steeply
    assert abs(g[0, 2]) < 1e-3 and abs(g[3, 4]) < 1e-3  # bonds within a fragment change nothing
    assert torch.isfinite(g).all() and g[:, 5:].abs().max() == 0  # padding gets no gradient


def test_selection_keeps_only_the_selected_components_of_a_bank_statistic():
    """A statistic with a dropped component (fluorine, which the network never makes) is written back
    with the kept ``components``, which the core picks out for factories without that option."""
    from hebm_core.config import StatisticEntry
    from hebm_core.registry import get_registry
    from hebm_core.runs.build import make_statistic
    from hebm_core.runs.select import _kept_entry

    reg = get_registry()
    entry = StatisticEntry.parse("elements")
    stat = make_statistic(entry, reg.get("mol"), reg)
    kept = _kept_entry(entry, stat, 4, ["elements.C", "elements.N", "elements.O"])
    assert kept == {"name": "elements", "components": ["C", "N", "O"]}
    assert _kept_entry(entry, stat, 4, [f"elements.{e}" for e in "CNOF"]) == "elements"
    picked = make_statistic(StatisticEntry.parse(kept), reg.get("mol"), reg)
    g = graph("CC(=O)N")
    assert torch.equal(picked(g), stat(g)[:, :3]) and picked.names(3) == ["elements.C", "elements.N", "elements.O"]
    valency = StatisticEntry.parse({"name": "valency", "components": ["excess", "bonds"]})
    assert make_statistic(valency, reg.get("mol"), reg)(g).shape == (1, 2)  # valency takes the option itself
