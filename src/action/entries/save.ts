import { runSave } from '../save-main.js'

await runSave()
