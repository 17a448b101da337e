"""The Models tab: what each model is and whether it loaded."""

from __future__ import annotations


class ModelsHandlers:
    """The Models tab's event functions (a part of :class:`app_handlers.Handlers`)."""

    def models_md(self, probe: bool = True) -> str:
        """The Models table. InstructPix2Pix's row shows its real state (:meth:`ip2p_status`: available, loaded,
        or unavailable and why), not "lazy"; ``probe=False`` (building the page) leaves that to the page load."""
        rows = ["| model | kind | source | from | status |", "|---|---|---|---|---|"]
        first_ip2p = self.registry.first("instruct_pix2pix")
        for e in self.registry.entries:
            status = e.status + (f" ({e.load_seconds:.1f} s)" if e.load_seconds else "")
            if e.kind == "instruct_pix2pix" and e.status == "lazy":
                if e is not first_ip2p:
                    status = "not used: the app serves the first InstructPix2Pix only"
                elif probe:
                    state, why = self.ip2p_status()
                    status = f"{state}: {why}"
                else:
                    status = "checking…"
            elif not e.ok:
                status += f": {e.reason}"
            rows.append(f"| `{e.key}` | {e.kind} | `{e.source}` | {e.origin} | {status} |")
        missing = self.registry.missing_kinds()
        if missing:
            rows.append("")
            rows.append("Not available: " + "; ".join(f"**{k.name}** ({k.help})" for k in missing) + ".")
        return "\n".join(rows)
