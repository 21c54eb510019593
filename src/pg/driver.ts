// pg, loaded with the navigator preset in place (see navigator-preset.ts): imports evaluate in order,
// so the preset is set before pg's modules run and comes off right after.
import { removeNavigatorPreset } from './navigator-preset.js';
import pg from 'pg';

removeNavigatorPreset();

export default pg;
