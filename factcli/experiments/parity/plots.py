"""The plots of one parity run: progress against iteration / step, test loss, diag(M), M itself."""

from __future__ import annotations

from factcli import plots


def plot_run(run, rows: list[dict], unit: str, matrices: dict, support, summary: dict) -> None:
    steps = [row[unit] for row in rows]
    learner = summary["learner"]
    network = learner == "net"
    matrix_name = "W₁ᵀW₁" if network else "M"
    setting = f"{learner}, d={summary['d']}, k={summary['k']}, n={summary['n']}"

    def column(name):
        return steps, [float(row[name]) for row in rows]

    plots.line_plot(
        run.plot_file("accuracy_vs_" + unit + ".png"),
        unit,
        "share",
        {
            "test accuracy": column("test_accuracy"),
            "train accuracy": column("train_accuracy"),
            f"support mass Σ_S {matrix_name}_jj / tr": column("support_mass"),
            f"top-{summary['k']} of diag = support": column("top_k_exact"),
        },
        title=f"Sparse parity ({setting})",
        highlight="test accuracy",
        hlines={"chance": 0.5},
    )
    plots.line_plot(
        run.plot_file("loss_vs_" + unit + ".png"),
        unit,
        "MSE (one-hot targets)",
        {"test": column("test_mse"), "train": column("train_mse")},
        title=f"Test loss: plateau, then the drop ({setting})",
        log_y=True,
        hlines={"constant 1/2": 0.25},
    )
    if network and any("fact_corr" in row for row in rows):
        logged = [row for row in rows if row.get("fact_corr") is not None]
        plots.line_plot(
            run.plot_file("correlations_vs_step.png"),
            "step",
            "Pearson correlation with W₁ᵀW₁",
            {
                name: ([row["step"] for row in logged], [float(row[key]) for row in logged])
                for name, key in (
                    ("FACT F", "fact_corr"),
                    ("(FFᵀ)^½", "fact_sym_corr"),
                    ("NFA AGOP^½", "nfa_corr"),
                )
            },
            # FACT is an equality at stationary points only: say how far from one the layer ended.
            title=f"First layer: FACT and NFA agreement (final residual {logged[-1]['residual']:.2g})",
        )
    final_step = steps[-1]
    final = matrices[final_step]
    d = final.shape[0]
    plots.bar_plot(
        run.plot_file("diag_feature_matrix.png"),
        [str(j) for j in range(d)],
        {f"diag({matrix_name}) at {unit} {final_step}": final.diagonal()},
        y_label=f"diag({matrix_name})",
        title=f"Diagonal of the learned {matrix_name}; support {list(support)} shaded",
        marked=list(support),
    )
    shown = {}
    jump = summary["first_95_at"]
    before = max((s for s in matrices if jump is not None and s < jump), default=None)
    if before is not None and before != final_step:
        shown[f"{matrix_name} at {unit} {before} (before 95%)"] = matrices[before]
    shown[f"{matrix_name} at {unit} {final_step}"] = final
    plots.heatmaps(run.plot_file("feature_matrix.png"), shown, title=f"Learned feature matrix ({setting})")
