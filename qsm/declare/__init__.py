"""What can be asked for, torch-free (the pipeline reads it at DAG time): hyperparameters with
their ranges, the budget of a run, the catalog and registry of agents, the command lines' options
and the hyperparameter docs generated from them.
"""
