//! The features hooked into the terminals view (see extension.ts), in the
//! order their toolbar buttons and panels appear. A new feature adds one
//! line here.

import { egressExtension } from './egress';
import type { TerminalsExtensionFactory } from './extension';
import { sharesExtension } from '../shares/extension';
import { filesExtension } from '../files/extension';

export const TERMINALS_EXTENSIONS: TerminalsExtensionFactory[] = [egressExtension, sharesExtension, filesExtension];
