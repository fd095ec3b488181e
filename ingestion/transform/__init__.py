"""Transform: dbt builds the star schema (`dbt_build`); `quarantine` holds back bad versions."""
