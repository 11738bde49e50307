theory Template
  imports Complex_Main
    "HOL-Computational_Algebra.Computational_Algebra"
    "HOL-Number_Theory.Number_Theory"
begin

(* The shape of every per-problem theory llemma-prover checks (see
   llemma_prover/backends/isabelle/theory.py: theory_text). The file is written as <NAME>.thy with
   the problem's own header (theory <NAME> imports ... begin), its statement, then the proof:

   theorem NAME:
     fixes ...
     assumes h0: "..."
     shows "..."
     <proof>

   end
*)

end
