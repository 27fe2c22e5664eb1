"""Upstream LLM access: `client` (the only code that calls providers), `errors`, `redaction`,
`addresses`, `circuit`, and the built-in `simulator`. Import the submodules directly; this
package re-exports nothing so that `routerapp.providers.simulator` can be served without loading
the openai SDK."""
