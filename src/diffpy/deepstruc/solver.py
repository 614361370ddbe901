"""DeepStruc as a plugin of the ``diffpy.structure_solvers`` group.

Packages register structure solvers under the entry-point group
``diffpy.structure_solvers``, e.g. in ``pyproject.toml``::

    [project.entry-points."diffpy.structure_solvers"]
    deepstruc = "diffpy.deepstruc.solver:solver"

Protocol: the entry point names an object (an instance, not a class)
that provides

``name`` : str
    The entry point's name, e.g. ``"deepstruc"``.
``description`` : str
    One line that says what the solver does, for listings.
``propose(gr, **kwargs)`` -> list
    Candidate structures for the PDF ``gr``, best first.  ``gr`` is a
    PDF file path or an ``(r, G)`` pair of arrays (r in Å); keywords
    are solver specific.  Each candidate has ``structure`` (a
    ``diffpy.structure.Structure``), ``rw`` (float) and ``pdf`` (the
    ``(r, G_calc)`` of its fit).
``solve(gr, **kwargs)`` -> list, optional
    As ``propose``, for solvers that also refine their proposals into
    solutions; the candidates are of the same kind.

Loading the entry point must stay cheap: import heavy libraries inside
``propose``.  A program finds the solvers with, e.g.::

    import entrypoints

    solvers = entrypoints.get_group_named("diffpy.structure_solvers")
    candidates = solvers["deepstruc"].load().propose("data.gr")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from diffpy.deepstruc.candidate import Candidate

__all__ = ["DeepStrucSolver", "solver"]


class DeepStrucSolver:
    """Structure solver that proposes nanoparticles with DeepStruc."""

    name = "deepstruc"
    description = (
        "Propose metal nanoparticle structures from a PDF with a graph "
        "conditional variational autoencoder (DeepStruc)."
    )

    def propose(self, gr, **kwargs) -> list[Candidate]:
        """Propose structures for a PDF, best fit first.

        Parameters
        ----------
        gr : str, os.PathLike, tuple or PDFData
            The PDF, as accepted by
            :func:`diffpy.deepstruc.propose.propose_structures`.
        **kwargs
            Keywords of
            :func:`~diffpy.deepstruc.propose.propose_structures`
            (``top``, ``n_samples``, ``qmax``, ``element``, ...).

        Returns
        -------
        list of Candidate
            Candidates ranked by their fit.
        """
        from diffpy.deepstruc.propose import propose_structures

        return propose_structures(gr, **kwargs)

    def solve(self, gr, **kwargs) -> list[Candidate]:
        """Solve the structure of a PDF: site searches from the proposals.

        Parameters
        ----------
        gr : str, os.PathLike, tuple or PDFData
            The PDF, as for :meth:`propose`.
        **kwargs
            Keywords of :func:`~diffpy.deepstruc.solve.solve_structure`
            (``top``, ``max_atoms``, ``qmax``, ``element``, ...).

        Returns
        -------
        list of Candidate
            Solved candidates (``source="solved"``) and the proposals
            they started from, ranked by their fit.
        """
        from diffpy.deepstruc.solve import solve_structure

        return solve_structure(gr, **kwargs)


#: The object that the ``diffpy.structure_solvers`` entry point names.
solver = DeepStrucSolver()
