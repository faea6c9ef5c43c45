import { runRestore } from '../restore-main.js'

await runRestore()
