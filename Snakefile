# The pipeline lives in workflow/Snakefile. Snakemake takes its default target only from rules
# in this top-level file (an include alone leaves it with none), hence the one-line rule below.
include: "workflow/Snakefile"


rule default:
    input: rules.all.input
    default_target: True
