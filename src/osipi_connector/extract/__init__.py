"""One module per PI dataset: each turns PI Web API answers into Arrow tables with the schemas of `lake.schemas`."""
