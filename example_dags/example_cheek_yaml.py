from airflow_ordo_hooks import load_cheek_schedule  # cheek's schedule.yaml, next to this file
dags = load_cheek_schedule(__file__.replace("example_cheek_yaml.py", "cheek_schedule.yaml"), dag_id_prefix="yaml_")
