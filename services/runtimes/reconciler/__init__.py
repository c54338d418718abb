"""The reconciler (docs/reconciler.md): pipelines driven through Feldera's deployment
automaton, their config's routes run continuously while they are deployed."""
