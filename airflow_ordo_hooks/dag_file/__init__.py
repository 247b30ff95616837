"""The DAG-file side: what runs when a DAG file is parsed, in the DAG processor and in every task's process.

cheek's hooks config (:mod:`.job_events`), cheek's schedule (:mod:`.cheek_schedule`) and Ordo's
on_exit step (:mod:`.on_exit_step`) are validated here by one validator (:mod:`.schema`), and
wired onto tasks and DAGs as callbacks (:mod:`.attach`). Internal: DAG authors use the names the
package root exports.
"""
